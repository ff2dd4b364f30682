"""`--web.authorization=kubernetes`: who may read /metrics is Kubernetes RBAC's decision, as with
kube-rbac-proxy and controller-runtime's metrics filter. A bearer token is checked with a
TokenReview; the user it names must be allowed `get` on the non-resource URL of the request path by
a SubjectAccessReview. No token -> 401, denied -> 403. When the API server cannot answer, the
request is refused with 503 (fail closed, and "try again", not "you may not"); Prometheus records
the scrape as failed and retries on its next interval.

Verdicts are cached by a keyed digest of the path and token (never the token): an allowance for
ALLOWED_TTL, a refusal for DENIED_TTL, in two bounded maps, so refusals (all a flood of made-up
tokens can produce) only push out other refusals. Reviewing a token that has no allowance costs
the API server a TokenReview (and a SubjectAccessReview when it names someone), so those reviews
are budgeted, in two lanes, beyond which the request gets 429 and `Retry-After: 1`:

- tokens the cluster signed (sa_keys.py: a JWT whose signature one of the cluster's
  service-account keys verifies, fetched from /openid/v1/jwks): SIGNED_REVIEWS_PER_SECOND, shared
  by service account and pod so that one that is new (a rotated token: the kubelet replaces
  Prometheus's every hour or so) is not starved by one reviewed again and again (verdicts.Lane),
  at most SIGNED_CONCURRENCY at once. Only someone holding such tokens can ask here: minting them
  takes a credential (TokenRequest), a flood without credentials cannot;
- every other token, REVIEWS_PER_SECOND and at most `concurrency` at once: random strings, JWTs
  with a forged or unknown signature, and legitimate tokens of other kinds (an OpenShift OAuth
  token, an OIDC user's), which the API server may well accept, so they are reviewed, not refused.
Whatever the flood, the API server sees no more than REVIEWS_PER_SECOND reviews from it, and no
more than both rates together from everyone. A signed token is still reviewed: a signature says
who minted it, not whether it is still valid (a deleted pod or service account) nor what RBAC allows.

The key set is fetched when a token names a key id it does not have (a new signing key), at most
once per KEYS_RETRY, and again every KEYS_REFRESH in the background. When it cannot be read (RBAC,
an old API server) every token is reviewed in the second lane, as before there were two.

A token whose allowance ran out is reviewed again at once, outside those budgets and on threads
the reviews of new tokens cannot hold, and the request waits for that one review (concurrent
requests with the token share it). Serving the old allowance while a review refreshes it would
spare the scrape a few milliseconds once a minute, but a revoked token or a removed RoleBinding
would then outlive the 60 s it is promised, and an API outage would keep it working instead of
failing closed. Only a client holding a token that was allowed can take this way: the flood cannot.
"""

import asyncio
import hashlib
import hmac
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from ..kube.client import request_json
from .sa_keys import JWKS_PATH, Keys, Signed, parse
from .verdicts import Budget, Lane, Verdicts

log = structlog.get_logger("clonewatch.web")

ALLOWED_TTL = 60.0
DENIED_TTL = 10.0
ALLOWED_TOKENS = 256         # allowances kept (per token and path); only an allowed token adds one
DENIED_TOKENS = 1024
REVIEWS_PER_SECOND = 5       # reviews of new tokens the cluster did not sign (1-2 API requests each); beyond: 429
SIGNED_REVIEWS_PER_SECOND = 5    # reviews of new tokens signed with the cluster's service-account keys
SIGNED_FRESH = 3             # of those, for a service account and pod not reviewed in the last verdicts.FRESH_SECONDS
SIGNED_CONCURRENCY = 2
RENEWALS = 2                 # re-reviews of allowed tokens at once (each Prometheus replica has its own token)
KEYS_REFRESH = 300.0         # seconds between fetches of the service-account keys
KEYS_RETRY = 10.0            # at most this often on a key id not in the set, or after a failed fetch


@dataclass
class _Allowance:
    expires: float
    user: str


class Authorizer:
    def __init__(self, api: Any, concurrency: int = 4, allowed_ttl: float = ALLOWED_TTL,
                 denied_ttl: float = DENIED_TTL, timeout: float = 5.0,
                 reviews_per_second: float = REVIEWS_PER_SECOND,
                 signed_per_second: tuple[float, float] = (SIGNED_FRESH, SIGNED_REVIEWS_PER_SECOND - SIGNED_FRESH)) -> None:
        self.api = api
        self._sem = asyncio.Semaphore(concurrency)
        self._signed_sem = asyncio.Semaphore(SIGNED_CONCURRENCY)
        self._renewing = asyncio.Semaphore(RENEWALS)
        # Threads for every kind of review and the key fetch: the flood's take at most `concurrency`,
        # so a signed token's review, a renewal and a fetch always find one (the default executor
        # is shared with the backends' refreshes).
        self._pool = ThreadPoolExecutor(concurrency + SIGNED_CONCURRENCY + RENEWALS + 1, "authz")
        self._ttl = {True: allowed_ttl, False: denied_ttl}
        self._timeout = timeout
        self._secret = os.urandom(32)
        self._allowed: Verdicts[_Allowance] = Verdicts(ALLOWED_TOKENS)
        self._denied: Verdicts[tuple[float, int, str]] = Verdicts(DENIED_TOKENS)
        self._budget = Budget(reviews_per_second, reviews_per_second)
        self._signed = Lane(*signed_per_second)
        self._renewals: dict[bytes, asyncio.Future] = {}
        self.keys = Keys()
        self._keys_at = self._keys_tried = -float("inf")   # last fetched, last tried (monotonic)
        self._keys_fetch: asyncio.Future | None = None
        self.reviews = self.signed_reviews = self.key_fetches = 0

    async def check(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return web.Response(status=401, text="a bearer token is required\n",
                                headers={"WWW-Authenticate": 'Bearer realm="clonewatch"'})
        key = hmac.new(self._secret, f"{request.path}\0{token}".encode(), hashlib.sha256).digest()
        allowance = self._allowed.get(key)
        if allowance is not None:
            if allowance.expires > time.monotonic():
                return None
            status, text = await self._renew(key, token, request.path)
        else:
            refusal = self._denied.get(key)
            if refusal is not None and refusal[0] > time.monotonic():
                status, text = refusal[1], refusal[2]
            else:
                signed = await self._signed_by_cluster(token)
                if not (self._budget.take() if signed is None else await self._signed.take(signed)):
                    return web.Response(status=429, text="too many tokens to review\n", headers={"Retry-After": "1"})
                if signed is not None:
                    self.signed_reviews += 1
                async with self._sem if signed is None else self._signed_sem:
                    status, text = await self._review_off_loop(token, request.path)
                self._remember(key, status, text)
        if status == 200:
            return None
        return web.Response(status=status, text=text + "\n")

    async def _signed_by_cluster(self, token: str) -> Signed | None:
        """Who the token names when one of the cluster's service-account keys signed it, else None."""
        jws = parse(token)
        if jws is None:
            return None
        since = time.monotonic() - self._keys_tried
        if not self.keys.knows(jws):
            # A new signing key, or a made-up key id: fetch the set, at most once per KEYS_RETRY.
            if self._keys_fetch is not None or since >= KEYS_RETRY:
                await asyncio.shield(self._fetch_keys())
        elif time.monotonic() - self._keys_at >= KEYS_REFRESH and since >= KEYS_RETRY:
            self._fetch_keys()          # in the background: the set in hand serves meanwhile
        return self.keys.verify(jws)

    def _fetch_keys(self) -> asyncio.Future:
        if self._keys_fetch is None:
            self._keys_tried = time.monotonic()
            self._keys_fetch = asyncio.ensure_future(self._fetching_keys())
        return self._keys_fetch

    async def _fetching_keys(self) -> None:
        try:
            jwks = await asyncio.get_running_loop().run_in_executor(self._pool, self._get_keys)
            if jwks is not None:
                before = set(self.keys.keys)
                count = self.keys.load(jwks)
                self._keys_at = time.monotonic()
                if set(self.keys.keys) != before:
                    log.info("web_authz_keys", keys=count, path=JWKS_PATH)
        finally:
            self._keys_fetch = None

    def _get_keys(self) -> Any:
        """The JWKS document, or None when the API server did not give it. Runs in a thread."""
        self.key_fetches += 1
        try:
            code, jwks = request_json(self.api, "GET", JWKS_PATH, timeout=(self._timeout, self._timeout))
        except Exception as exc:      # connection refused, timeouts
            code, jwks = 0, exc
        if code == 200 and isinstance(jwks, dict):
            return jwks
        log.warning("web_authz_keys_unavailable", path=JWKS_PATH,
                    status=code or type(jwks).__name__,
                    note="tokens are reviewed in the budget of unsigned tokens until the keys can be read")
        return None

    async def _renew(self, key: bytes, token: str, path: str) -> tuple[int, str]:
        """One review for an allowance that ran out, however many requests bring its token."""
        renewal = self._renewals.get(key)
        if renewal is None:
            renewal = asyncio.ensure_future(self._renewal(key, token, path))
            self._renewals[key] = renewal
        # Shielded: a scrape that gives up does not cancel the review the others wait for.
        return await asyncio.shield(renewal)

    async def _renewal(self, key: bytes, token: str, path: str) -> tuple[int, str]:
        try:
            async with self._renewing:
                status, text = await self._review_off_loop(token, path)
            self._remember(key, status, text)
            return status, text
        finally:
            del self._renewals[key]

    async def _review_off_loop(self, token: str, path: str) -> tuple[int, str]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._review, token, path)

    def _remember(self, key: bytes, status: int, text: str) -> None:
        now = time.monotonic()
        if status == 200:
            self._allowed.put(key, _Allowance(now + self._ttl[True], text))
            self._denied.pop(key)
        elif status in (401, 403):
            self._allowed.pop(key)
            self._denied.put(key, (now + self._ttl[False], status, text))
        # An API outage (503) is not remembered: an allowance that ran out stays to be renewed.

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _post(self, kind: str, path: str, spec: dict) -> dict | None:
        """A review's status as the API server answers it, or None when it did not answer."""
        group = path.split("/")[2]
        body = {"apiVersion": f"{group}/v1", "kind": kind, "spec": spec}
        try:
            code, review = request_json(self.api, "POST", path, body, timeout=(self._timeout, self._timeout))
        except Exception as exc:      # connection refused, timeouts: the API server did not answer
            log.warning("web_authz_unavailable", step=kind, error=type(exc).__name__)
            return None
        if code >= 300 or not isinstance(review, dict):
            log.warning("web_authz_unavailable", step=kind, status=code)
            return None
        return review.get("status") or {}

    def _review(self, token: str, path: str) -> tuple[int, str]:
        """(200, user) when allowed, else (401|403|503, why). Runs in a thread."""
        self.reviews += 1
        status = self._post("TokenReview", "/apis/authentication.k8s.io/v1/tokenreviews", {"token": token})
        if status is None:
            return 503, "cannot check the token now (Kubernetes API unavailable)"
        if not status.get("authenticated"):
            return 401, "token not accepted"
        user = status.get("user") or {}
        name = str(user.get("username", ""))
        answer = self._post("SubjectAccessReview", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                            {"user": name, "groups": user.get("groups") or [], "uid": user.get("uid", ""),
                             "extra": user.get("extra") or {},
                             "nonResourceAttributes": {"path": path, "verb": "get"}})
        if answer is None:
            return 503, "cannot check access now (Kubernetes API unavailable)"
        if answer.get("allowed"):
            return 200, name
        log.info("web_authz_denied", user=name, path=path)
        return 403, f"{name} may not get {path}"
