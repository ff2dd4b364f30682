"""A small async client for the IBM Cloud VPC API: just enough to read a volume.

IAM: `POST <iam>/identity/token` (form: grant_type=urn:ibm:params:oauth:grant-type:apikey,
apikey=...) gives a bearer `access_token` with `expiration` (Unix time). VPC: `GET
<region endpoint>/v1/volumes/<id>?version=YYYY-MM-DD&generation=2` gives the volume (`capacity`
in GB, `source_snapshot` {id, name, crn, ...} when it was restored from one, `user_tags`,
`created_at`); `GET <endpoint>/v1/volumes?limit=N[&start=T]` gives a page `{"volumes": [...],
"limit", "first": {"href"}, "next": {"href": "...?start=T&..."}}`, no `next` on the last page.
Errors come as `{"errors": [{"code", "message"}], "trace"}`. A 401 means the token expired: one new token.

Written on aiohttp rather than the `ibm-vpc` SDK: that SDK pins python-dateutil below 3, which
the `kubernetes` client we depend on requires at 3 or later, so the two cannot be installed together.
"""

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from ..base import BackendError, read_secret
from ..transport import LazySession

API_VERSION = "2025-06-03"     # the VPC API's dated version we speak (its `version` query parameter)
APIKEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"
PAGE_LIMIT = 100               # the most volumes the API gives in one page
MAX_PAGES = 1000               # a `next` that never ends is the API's fault, not a reason to loop for ever


@dataclass(frozen=True)
class VpcApiAccess:
    url: str                        # regional endpoint, e.g. https://us-south.iaas.cloud.ibm.com
    api_key_file: Path
    iam_url: str = "https://iam.cloud.ibm.com"
    ca_file: Path | None = None     # None: the system's CA bundle


class VpcApiClient:
    def __init__(self, access: VpcApiAccess, timeout_seconds: float = 30.0, concurrency: int = 4) -> None:
        self.access = access
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.sem = asyncio.Semaphore(max(1, concurrency))
        self._http = LazySession(access.ca_file, False, self.timeout)
        self._token: tuple[str, float] | None = None      # (token, expires at)
        self._token_lock = asyncio.Lock()
        self.token_requests = 0

    async def close(self) -> None:
        await self._http.close()

    async def volume(self, volume_id: str) -> dict[str, Any] | None:
        """The volume, or None when the VPC API does not know it (404)."""
        status, text = await self._get(f"volumes/{volume_id}", {})
        if status == 404:
            return None
        if status != 200:
            raise BackendError(f"VPC API volumes/{volume_id}: HTTP {status}: {_errors(text)}")
        doc = _json(text, "VPC API volume")
        if not isinstance(doc, dict):
            raise BackendError("VPC API volume: reply is not an object")
        return doc

    async def volumes(self) -> list[dict[str, Any]]:
        """Every volume of the region the credentials see, page after page. Only the `start` token
        of a page's `next.href` is taken: requests go to our endpoint, never to a host a reply names."""
        out: list[dict[str, Any]] = []
        start, seen = "", set()
        for _ in range(MAX_PAGES):
            params = {"limit": str(PAGE_LIMIT), **({"start": start} if start else {})}
            status, text = await self._get("volumes", params)
            if status != 200:
                raise BackendError(f"VPC API volumes: HTTP {status}: {_errors(text)}")
            doc = _json(text, "VPC API volumes")
            page = doc.get("volumes") if isinstance(doc, dict) else None
            if not isinstance(page, list):
                raise BackendError("VPC API volumes: reply has no volumes list")
            out += [v for v in page if isinstance(v, dict)]
            start = _start_token(doc.get("next"))
            if not start:
                return out
            if start in seen:
                raise BackendError("VPC API volumes: the pages come round again")
            seen.add(start)
        raise BackendError(f"VPC API volumes: more than {MAX_PAGES} pages")

    async def _get(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        base = self.access.url.rstrip("/").removesuffix("/v1")
        async with self.sem:
            token = None
            for attempt in range(2):
                token = await self._bearer(stale=token)
                status, text = await self._request("GET", f"{base}/v1/{path}",
                                                   headers={"Authorization": f"Bearer {token}",
                                                            "Accept": "application/json"},
                                                   params={"version": API_VERSION, "generation": "2", **params})
                if status == 401 and attempt == 0:
                    continue
                break
        return status, text

    async def _bearer(self, stale: str | None) -> str:
        """The current token; a new one when it is about to expire or is the one just refused
        (`stale`) — once for all the requests that were refused with it."""
        async with self._token_lock:
            if self._token and self._token[0] != stale and time.time() < self._token[1] - 60:
                return self._token[0]
            form = {"grant_type": APIKEY_GRANT, "apikey": read_secret(self.access.api_key_file, "API key")}
            status, text = await self._request("POST", f"{self.access.iam_url.rstrip('/')}/identity/token",
                                               headers={"Accept": "application/json"}, data=form)
            if status != 200:
                raise BackendError(f"IAM token: HTTP {status}: {_errors(text)}")
            doc = _json(text, "IAM token")
            token, expiration = (doc.get("access_token"), doc.get("expiration")) if isinstance(doc, dict) else (None, None)
            if not isinstance(token, str) or not token or not isinstance(expiration, (int, float)):
                raise BackendError("IAM token: reply without access_token/expiration")
            self._token = (token, float(expiration))
            self.token_requests += 1
            return token

    async def _request(self, method: str, url: str, **kw: Any) -> tuple[int, str]:
        try:
            async with self._http.get().request(method, url, **kw) as resp:
                return resp.status, await resp.text(errors="replace")
        except TimeoutError:
            raise BackendError(f"{method} {url.split('?')[0]}: no answer within {self.timeout.total:g}s") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise BackendError(f"{url.split('/v1')[0]}: TLS certificate not trusted ({exc.certificate_error})") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise BackendError(f"{method} {url.split('?')[0]}: {type(exc).__name__}: {exc}") from None


def _start_token(link: Any) -> str:
    """The `start` query parameter of a page link, "" when there is no next page."""
    href = link.get("href") if isinstance(link, dict) else None
    if not isinstance(href, str) or not href:
        return ""
    values = parse_qs(urlsplit(href).query).get("start", [])
    if len(values) != 1 or not values[0]:
        raise BackendError(f"VPC API volumes: a next page without a start token: {href[:120]}")
    return values[0]


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise BackendError(f"{what}: reply is not JSON: {' '.join(text.split())[:120]}") from None


def _errors(text: str) -> str:
    """The API's own error codes and messages (IAM: errorCode/errorMessage; VPC: errors[])."""
    try:
        doc = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200] or "(empty)"
    if isinstance(doc, dict) and isinstance(doc.get("errors"), list):
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in doc["errors"] if isinstance(e, dict))[:200]
    if isinstance(doc, dict) and "errorCode" in doc:
        return f"{doc.get('errorCode')}: {doc.get('errorMessage')}"[:200]
    return str(doc)[:200]
