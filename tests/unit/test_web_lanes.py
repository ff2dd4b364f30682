"""How a flood without credentials is kept from a legitimate first check: the lane that shares the
password checks by client address (a fresh address is never starved by addresses checked again
and again), the cluster's service-account keys that tell a minted token from a made-up one, and
the Authorizer's two review budgets. The same against the daemons as processes, under a flood:
tests/integration/test_web_flood.py."""

import asyncio
import json
import time

import pytest
from aiohttp.test_utils import make_mocked_request
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from exporter.http.kube_authz import KEYS_RETRY, Authorizer
from exporter.http.sa_keys import LEEWAY, Keys, Signed, parse
from exporter.http.serve import _source
from exporter.http.verdicts import Lane
from tests.support.flood import forged_jwt
from tests.support.kube import jwk, key_id, sign_jwt, token_claims

PROM = "system:serviceaccount:openshift-monitoring:prometheus-k8s"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def keys(*private) -> Keys:
    k = Keys()
    assert k.load({"keys": [jwk(p.public_key()) for p in private]}) == len(private)
    return k


# -- the lane ---------------------------------------------------------------------------------

async def test_addresses_checked_again_and_again_never_spend_the_fresh_share():
    lane = Lane(fresh=2, again=2, wait=0.5)
    assert await lane.take("10.0.0.1") and await lane.take("10.0.0.2"), "fresh: the fresh share"
    again = [await lane.take(f"10.0.0.{1 + n % 2}") for n in range(50)]
    assert again.count(True) <= 3 and again.count(False) >= 47, "recent: the other share, then 429 at once"
    t = time.monotonic()
    assert await lane.take("10.0.0.9"), "a fresh address still gets its check"
    assert time.monotonic() - t < 1.0, "after at most a refill of the fresh share"


async def test_fresh_addresses_wait_their_turn_first_come_first_served():
    lane = Lane(fresh=10, again=1, wait=2.0, waiting=3)
    for n in range(10):
        assert await lane.take(f"a{n}")          # the burst of the fresh share
    waiting = [asyncio.ensure_future(lane.take(k)) for k in ("x", "y", "z")]
    await asyncio.sleep(0)
    assert await lane.take("x") is False, "one waiting request an address"
    assert await lane.take("w") is False, "at most `waiting` at once"
    t = time.monotonic()
    assert await asyncio.gather(*waiting) == [True, True, True]
    assert time.monotonic() - t < 1.0, "each after a tenth of a second (10 a second)"


async def test_a_fresh_address_that_waits_too_long_gets_false():
    lane = Lane(fresh=1, again=1, wait=0.1)
    assert await lane.take("a")
    assert await lane.take("b") is False, "the next fresh token is a second away, the wait 0.1 s"
    assert not lane._queue, "it left the queue"


async def test_an_address_is_fresh_again_after_the_memory():
    lane = Lane(fresh=5, again=1, memory=0.0)
    assert all([await lane.take("a") for _ in range(5)]), "memory 0: always fresh, never the other share"


def test_a_client_is_its_address_an_ipv6_one_by_its_64():
    def remote(address: str) -> str:
        request = make_mocked_request("GET", "/metrics")
        request._cache["remote"] = address        # what aiohttp reads from the transport's peername
        return _source(request)
    assert remote("192.0.2.7") == "192.0.2.7"
    assert remote("2001:db8:1:2::5") == remote("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert remote("2001:db8:1:3::5") != remote("2001:db8:1:2::5")
    assert remote("::ffff:192.0.2.7") == "192.0.2.7"


# -- the cluster's keys -------------------------------------------------------------------------

def test_a_token_the_cluster_signed_is_known_by_its_key_rsa_and_ec():
    k = keys(RSA_KEY, EC_KEY)
    for private in (RSA_KEY, EC_KEY):
        token = sign_jwt(private, token_claims(PROM, pod="prometheus-k8s-1"))
        jws = parse(token)
        assert jws is not None and k.knows(jws)
        assert k.verify(jws) == Signed(PROM, "prometheus-k8s-1")
    legacy = {"iss": "kubernetes/serviceaccount", "sub": PROM,
              "kubernetes.io/serviceaccount/namespace": "openshift-monitoring"}      # a Secret's token: no expiry
    assert k.verify(parse(sign_jwt(RSA_KEY, legacy))) == Signed(PROM, "")
    no_kid = sign_jwt(RSA_KEY, token_claims(PROM), header={"alg": "RS256"})
    assert k.verify(parse(no_kid)) == Signed(PROM, "prometheus-k8s-0"), "no key id: tried against the set's RSA keys"


def test_made_up_and_forged_tokens_are_not_signed():
    k = keys(RSA_KEY, EC_KEY)
    kid = key_id(RSA_KEY.public_key())
    assert parse("0123456789abcdef") is None and parse("a.b") is None and parse("a.b.c") is None
    assert parse("x" * 20000) is None
    for n in range(4):       # the flood's: random signature, alg none, HS256, unknown key id
        jws = parse(forged_jwt(n, kid, PROM))
        assert jws is None or k.verify(jws) is None, n
    good = sign_jwt(RSA_KEY, token_claims(PROM))
    head, _, signature = good.split(".")
    other = sign_jwt(RSA_KEY, token_claims("system:serviceaccount:default:default")).split(".")[1]
    assert k.verify(parse(f"{head}.{other}.{signature}")) is None, "the signature covers the claims"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    impostor = sign_jwt(other_key, token_claims(PROM), header={"alg": "RS256", "kid": kid})
    assert k.verify(parse(impostor)) is None, "the cluster's key id, someone else's key"
    ec_kid = key_id(EC_KEY.public_key())
    confused = sign_jwt(RSA_KEY, token_claims(PROM), header={"alg": "RS256", "kid": ec_kid})
    assert k.verify(parse(confused)) is None, "the algorithm must be the key's"
    crit = sign_jwt(RSA_KEY, token_claims(PROM), header={"alg": "RS256", "kid": kid, "crit": ["exp"]})
    assert parse(crit) is None


def test_an_expired_token_is_not_signed_past_the_api_servers_leeway():
    k = keys(RSA_KEY)
    now = int(time.time())
    stale = parse(sign_jwt(RSA_KEY, token_claims(PROM, lifetime=600, now=now - 600 - 30)))
    assert k.verify(stale) is not None, "30 s past exp: within the 60 s leeway"
    assert k.verify(stale, now=now + LEEWAY) is None
    early = parse(sign_jwt(RSA_KEY, token_claims(PROM, now=now + 3 * int(LEEWAY))))
    assert k.verify(early) is None, "not before: beyond the leeway"


def test_a_key_set_takes_only_keys_it_can_verify_with():
    k = Keys()
    assert k.load({"keys": [jwk(RSA_KEY.public_key()), {"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "n": "!"},
                            {**jwk(EC_KEY.public_key()), "use": "enc"}, "garbage"]}) == 1
    assert k.load("not a set") == 0 and k.keys == {}


# -- the Authorizer's two budgets -----------------------------------------------------------------

class Cluster(Authorizer):
    """An Authorizer whose API server is a table (token -> (status, text)) and a key set."""

    def __init__(self, answers: dict[str, tuple[int, str]], jwks: dict | None, **kw) -> None:
        super().__init__(api=None, **kw)
        self.answers, self.jwks = answers, jwks
        self.asked: list[str] = []

    def _review(self, token: str, path: str) -> tuple[int, str]:
        self.asked.append(token)
        return self.answers.get(token, (401, "token not accepted"))

    def _get_keys(self):
        self.key_fetches += 1
        return self.jwks


def get(token: str):
    return make_mocked_request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})


async def statuses(authz: Authorizer, tokens) -> list[int]:
    return [(r.status if (r := await authz.check(get(t))) is not None else 200) for t in tokens]


@pytest.fixture
def cluster():
    made = []

    def make(answers, jwks, **kw) -> Cluster:
        made.append(Cluster(answers, jwks, **kw))
        return made[-1]
    yield make
    for authz in made:
        authz.close()


async def test_a_rotated_token_is_reviewed_while_made_up_tokens_are_refused_unreviewed(cluster):
    rotated = sign_jwt(RSA_KEY, token_claims(PROM))
    authz = cluster({rotated: (200, PROM)}, {"keys": [jwk(RSA_KEY.public_key())]}, reviews_per_second=2)
    kid = key_id(RSA_KEY.public_key())
    flood = [f"made-up-{n}" if n % 2 else forged_jwt(n // 2, kid, PROM) for n in range(200)]
    answered = await statuses(authz, flood)
    assert answered.count(429) >= 190, "the budget of tokens the cluster did not sign is spent"
    assert await statuses(authz, [rotated]) == [200], "its own budget: reviewed at once"
    assert authz.signed_reviews == 1 and authz.asked[-1] == rotated
    assert authz.key_fetches <= 2, "unknown key ids fetch the set at most once per KEYS_RETRY"
    assert KEYS_RETRY >= 5


async def test_without_the_keys_every_token_is_reviewed_in_the_unsigned_budget(cluster):
    token = sign_jwt(RSA_KEY, token_claims(PROM))
    authz = cluster({token: (200, PROM)}, None, reviews_per_second=1)
    assert await statuses(authz, [token]) == [200], "the set could not be read: reviewed as any token"
    assert authz.signed_reviews == 0 and authz.key_fetches == 1
    later = sign_jwt(RSA_KEY, token_claims(PROM))
    authz.answers[later] = (200, PROM)
    assert await statuses(authz, [later]) == [429], "and budgeted as any token (1 a second, spent)"
    assert authz.key_fetches == 1, "not fetched again before KEYS_RETRY"


async def test_a_new_signing_key_is_fetched_when_its_first_token_comes(cluster):
    authz = cluster({}, {"keys": [jwk(RSA_KEY.public_key())]})
    first = sign_jwt(RSA_KEY, token_claims(PROM))
    authz.answers[first] = (200, PROM)
    assert await statuses(authz, [first]) == [200] and authz.key_fetches == 1 and authz.signed_reviews == 1
    authz.jwks = {"keys": [jwk(RSA_KEY.public_key()), jwk(EC_KEY.public_key())]}    # the cluster adds a key
    authz._keys_tried -= KEYS_RETRY           # as if the last fetch were KEYS_RETRY ago
    second = sign_jwt(EC_KEY, token_claims(PROM))
    authz.answers[second] = (200, PROM)
    assert await statuses(authz, [second]) == [200] and authz.key_fetches == 2 and authz.signed_reviews == 2
    assert json.dumps(sorted(authz.keys.keys)) == json.dumps(sorted([key_id(RSA_KEY.public_key()),
                                                                     key_id(EC_KEY.public_key())]))
