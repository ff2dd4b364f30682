"""`--web.authorization=kubernetes`: who may read /metrics is Kubernetes RBAC's decision, as with
kube-rbac-proxy and controller-runtime's metrics filter. A bearer token is checked with a
TokenReview; the user it names must be allowed `get` on the non-resource URL of the request path by
a SubjectAccessReview. No token -> 401, denied -> 403. When the API server cannot answer, the
request is refused with 503 (fail closed, and "try again", not "you may not"); Prometheus records
the scrape as failed and retries on its next interval.

Verdicts are cached by a keyed digest of the token (never the token) for a short while, allowed
longer than denied, and at most `concurrency` reviews run at once so a flood of bad tokens cannot
exhaust the API server or the exporter's threads.
"""

import asyncio
import hashlib
import hmac
import os
import time
from collections import OrderedDict
from typing import Any

import structlog
from aiohttp import web

from ..kube.client import request_json

log = structlog.get_logger("clonewatch.web")

ALLOWED_TTL = 60.0
DENIED_TTL = 10.0
CACHE_SIZE = 1024


class Authorizer:
    def __init__(self, api: Any, concurrency: int = 4, allowed_ttl: float = ALLOWED_TTL,
                 denied_ttl: float = DENIED_TTL, timeout: float = 5.0) -> None:
        self.api = api
        self._sem = asyncio.Semaphore(concurrency)
        self._ttl = {True: allowed_ttl, False: denied_ttl}
        self._timeout = timeout
        self._secret = os.urandom(32)
        self._cache: OrderedDict[bytes, tuple[float, int, str]] = OrderedDict()
        self.reviews = 0

    async def check(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return web.Response(status=401, text="a bearer token is required\n",
                                headers={"WWW-Authenticate": 'Bearer realm="clonewatch"'})
        key = hmac.new(self._secret, f"{request.path}\0{token}".encode(), hashlib.sha256).digest()
        hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic():
            status, text = hit[1], hit[2]
        else:
            async with self._sem:
                status, text = await asyncio.to_thread(self._review, token, request.path)
            if status in (200, 401, 403):          # an API outage is not remembered
                self._cache[key] = (time.monotonic() + self._ttl[status == 200], status, text)
                if len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        if status == 200:
            return None
        return web.Response(status=status, text=text + "\n")

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
