"""A small async client for the IBM Storage Virtualize (FlashSystem, SVC) REST API.

The API runs CLI commands: `POST https://<mgmt>:7443/rest/v1/<command>[/<object id>]` with a
JSON body of the command's flags, authenticated by a token from `POST /rest/v1/auth`
(headers X-Auth-Username / X-Auth-Password). Tokens expire (60 minutes by default, or after
inactivity): a 401/403 on a command means "log in again", once. Every value the array returns
is a string.

Credentials are read from files for each login (a rotated Secret is picked up) and never
appear in a message or log line.
"""

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from ..base import BackendError, read_secret
from ..transport import LazySession, host_port

DEFAULT_PORT = 7443


@dataclass(frozen=True)
class ArrayAccess:
    name: str
    addresses: tuple[str, ...]      # host or host:port; tried in order while unreachable
    username_file: Path
    password_file: Path
    ca_file: Path | None = None     # None: the system's CA bundle
    insecure: bool = False          # labs only: no certificate check at all


def base_url(address: str) -> str:
    host, port = host_port(address, DEFAULT_PORT)
    return f"https://[{host}]:{port}/rest/v1" if ":" in host else f"https://{host}:{port}/rest/v1"


class SvcClient:
    """One array: a session, its token and a bound on requests in flight."""

    def __init__(self, access: ArrayAccess, timeout_seconds: float, concurrency: int = 2) -> None:
        self.access = access
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._sem = asyncio.Semaphore(max(1, concurrency))
        self._http = LazySession(access.ca_file, access.insecure, self.timeout)
        self._token: str | None = None
        self._url: str | None = None            # the address that answered last
        self._login_lock = asyncio.Lock()
        self.logins = 0                         # for tests: how often we authenticated

    async def close(self) -> None:
        await self._http.close()

    async def command(self, name: str, body: dict[str, Any] | None = None, object_id: str = "") -> Any:
        """Run one CLI command; its decoded JSON reply."""
        async with self._sem:
            for attempt in range(2):
                token = await self._login() if self._token is None else self._token
                status, payload = await self._post(f"/{name}" + (f"/{object_id}" if object_id else ""),
                                                   {"X-Auth-Token": token}, body or {})
                if status in (401, 403) and attempt == 0:
                    self._token = None if self._token == token else self._token   # expired: log in again
                    continue
                if status == 429 and attempt == 0:
                    await asyncio.sleep(1.0)            # the array's request-rate cap: one polite retry
                    continue
                if status != 200:
                    raise BackendError(f"{name}: HTTP {status}: {_short(payload)}")
                try:
                    return json.loads(payload)
                except ValueError:
                    raise BackendError(f"{name}: reply is not JSON: {_short(payload)}") from None
            raise BackendError(f"{name}: HTTP {status}: {_short(payload)}")

    async def _login(self) -> str:
        async with self._login_lock:
            if self._token is not None:
                return self._token
            headers = {"X-Auth-Username": read_secret(self.access.username_file, "username"),
                       "X-Auth-Password": read_secret(self.access.password_file, "password")}
            status, payload = await self._post("/auth", headers, None)
            if status != 200:
                raise BackendError(f"authentication failed: HTTP {status}: {_short(payload)}")
            try:
                token = json.loads(payload)["token"]
            except (ValueError, KeyError, TypeError):
                raise BackendError(f"authentication: reply has no token: {_short(payload)}") from None
            if not isinstance(token, str) or not token:
                raise BackendError("authentication: reply has an empty token")
            self._token = token
            self.logins += 1
            return token

    async def _post(self, path: str, headers: dict[str, Any], body: dict[str, Any] | None) -> tuple[int, str]:
        session = self._http.get()
        urls = [self._url] if self._url else []
        urls += [base_url(a) for a in self.access.addresses if base_url(a) not in urls]
        last = ""
        for url in urls:
            try:
                async with session.post(url + path, headers=headers, json=body) as resp:
                    text = await resp.text(errors="replace")
                    self._url = url
                    return resp.status, text
            except TimeoutError:
                raise BackendError(f"{path.lstrip('/')}: no answer within {self.timeout.total:g}s "
                                   f"from {url}") from None
            except aiohttp.ClientConnectorCertificateError as exc:
                raise BackendError(f"{url}: TLS certificate not trusted ({exc.certificate_error}); "
                                   "give the array's CA bundle") from None
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                last = f"{url}: {type(exc).__name__}: {exc}"
                if self._url == url:
                    self._url = None
        raise BackendError(f"{path.lstrip('/')}: no management address reachable ({last})")


def _short(text: str) -> str:
    return " ".join(text.split())[:200] or "(empty)"
