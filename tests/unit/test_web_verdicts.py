"""What the guard remembers about credentials: allowed and refused verdicts apart, so refusals never
push out an allowance; the budgets on checking new credentials; the renewal of a token allowance
ahead of the flood. The flood itself, against the daemons as processes: tests/integration/test_web_flood.py."""

import asyncio
import threading
import time

import bcrypt
from aiohttp.test_utils import make_mocked_request

from exporter.http.kube_authz import ALLOWED_TOKENS, DENIED_TOKENS, Authorizer
from exporter.http.verdicts import Verdicts
from exporter.http.webconfig import ALLOWED_PAIRS, DENIED_PAIRS, BasicAuth


def test_verdicts_keep_the_most_recently_used():
    v: Verdicts[int] = Verdicts(2)
    v.put("a", 1)
    v.put("b", 2)
    assert v.get("a") == 1               # a is now the newest
    v.put("c", 3)
    assert "b" not in v and v.get("a") == 1 and v.get("c") == 3 and len(v) == 2
    v.pop("a")
    v.pop("nothing")
    assert "a" not in v and len(v) == 1


def test_made_up_passwords_never_push_out_a_verified_pair():
    auth = BasicAuth({"prometheus": bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4))})
    assert auth.check("prometheus", "right")
    for n in range(4 * max(ALLOWED_PAIRS, DENIED_PAIRS)):
        # Made-up user names, and the real one with made-up passwords.
        assert not auth.check("prometheus" if n % 2 else f"guess-{n}", f"wrong-{n}")
    calls = auth.bcrypt_calls
    assert auth.cached("prometheus", "right") is True and auth.check("prometheus", "right")
    assert auth.bcrypt_calls == calls, "still a look-up, no bcrypt"
    assert len(auth._denied) == DENIED_PAIRS, "refusals are bounded"


def test_a_known_user_name_with_a_new_password_is_not_the_fast_path():
    auth = BasicAuth({"prometheus": bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4))})
    assert auth.check("prometheus", "right")
    assert auth.cached("prometheus", "right!") is None, "only the exact verified pair is known"
    assert not auth.check("prometheus", "right!") and auth.cached("prometheus", "right!") is False


def test_a_changed_hash_forgets_the_pairs_verified_against_the_old_one():
    auth = BasicAuth({"prometheus": bcrypt.hashpw(b"old", bcrypt.gensalt(rounds=4))})
    assert auth.check("prometheus", "old")
    auth.users["prometheus"] = bcrypt.hashpw(b"new", bcrypt.gensalt(rounds=4))
    assert auth.cached("prometheus", "old") is None and not auth.check("prometheus", "old")
    assert auth.check("prometheus", "new")


class Reviews(Authorizer):
    """An Authorizer whose API server is a table: token -> (status, text); counts what it was asked.
    `gate`, when set, holds every review until it is set (a slow API server)."""

    def __init__(self, answers: dict[str, tuple[int, str]], **kw) -> None:
        super().__init__(api=None, **kw)
        self.answers = answers
        self.asked: list[str] = []
        self.gate: threading.Event | None = None

    def _review(self, token: str, path: str) -> tuple[int, str]:
        if self.gate is not None:
            self.gate.wait(5)
        self.asked.append(token)
        return self.answers.get(token, (401, "token not accepted"))


def get(token: str):
    return make_mocked_request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})


async def statuses(authz: Authorizer, tokens) -> list[int]:
    return [(r.status if (r := await authz.check(get(t))) is not None else 200) for t in tokens]


async def test_refused_tokens_never_push_out_an_allowance_and_their_reviews_are_budgeted():
    authz = Reviews({"prom": (200, "prometheus-k8s")}, reviews_per_second=1000)
    try:
        assert await statuses(authz, ["prom"]) == [200]
        flood = [f"made-up-{n}" for n in range(2 * max(ALLOWED_TOKENS, DENIED_TOKENS))]
        assert set(await statuses(authz, flood)) == {401}
        assert await statuses(authz, ["prom"]) == [200] and authz.asked.count("prom") == 1, "still allowed, no review"
        assert await statuses(authz, flood[-1:]) == [401] and len(authz.asked) == len(flood) + 1, "refusals are cached"
    finally:
        authz.close()

    authz = Reviews({"prom": (200, "prometheus-k8s")}, reviews_per_second=5)
    try:
        t = time.monotonic()
        answered = await statuses(authz, [f"made-up-{n}" for n in range(50)])
        reviewed = answered.count(401)
        assert 5 <= reviewed <= 5 + 5 * (time.monotonic() - t), "a burst of 5, then 5 a second"
        assert answered.count(429) == 50 - reviewed
        assert len(authz.asked) == reviewed, "a refused request costs the API server nothing"
    finally:
        authz.close()


async def test_an_expired_allowance_is_renewed_ahead_of_the_budget_with_one_review():
    # allowed_ttl=0: every allowance has run out by the next request.
    authz = Reviews({"prom": (200, "prometheus-k8s")}, reviews_per_second=1, allowed_ttl=0)
    try:
        assert await statuses(authz, ["prom", "made-up"]) == [200, 429], "the budget (1 a second) is spent"
        authz.gate = threading.Event()
        waiting = [asyncio.ensure_future(authz.check(get("prom"))) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiting), "the scrape waits for the review: no stale allowance"
        authz.gate.set()
        assert await asyncio.gather(*waiting) == [None] * 5
        assert authz.asked.count("prom") == 2, "one renewal for the five requests, outside the spent budget"
    finally:
        authz.close()


async def test_a_renewal_that_is_refused_ends_the_allowance_and_an_outage_is_not_remembered():
    authz = Reviews({"prom": (200, "prometheus-k8s")}, allowed_ttl=0)
    try:
        assert await statuses(authz, ["prom"]) == [200]
        authz.answers["prom"] = (503, "cannot check the token now (Kubernetes API unavailable)")
        assert await statuses(authz, ["prom"]) == [503], "fails closed: the expired allowance is not served"
        authz.answers["prom"] = (200, "prometheus-k8s")
        assert await statuses(authz, ["prom"]) == [200] and authz.asked.count("prom") == 3, "renewed once the API answers"
        authz.answers["prom"] = (401, "token not accepted")          # revoked
        assert await statuses(authz, ["prom", "prom"]) == [401, 401]
        assert authz.asked.count("prom") == 4, "the allowance is gone and the refusal is cached like any other"
    finally:
        authz.close()
