"""Serving an aiohttp app the way both daemons do: TLS and basic auth from `--web.config.file`,
optional Kubernetes authorization (`--web.authorization=kubernetes`), response headers, and limits
so that bad or slow clients cannot crowd out Prometheus's scrape.

/healthz and /readyz are never behind authentication: kubelet probes carry no credentials and
those endpoints tell nothing about the cluster. Everything else (/metrics, the landing page) is.
"""

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from ..config.settings import ConfigError
from .verdicts import Budget, Lane
from .webconfig import BasicAuth, ReloadingContext, WebConfig, load

log = structlog.get_logger("clonewatch.web")

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
REALM = 'Basic realm="clonewatch", charset="UTF-8"'
# Requests here are GETs of a few hundred bytes: anything bigger is not a scrape.
MAX_BODY = 64 * 1024
MAX_LINE = 8 * 1024
KEEPALIVE_SECONDS = 30.0         # also closes a connection that never sends a request (aiohttp >= 3.10)
HANDSHAKE_SECONDS = 10.0         # a TLS client that stalls its handshake is dropped
MAX_CONNECTIONS = 256            # at the ceiling the oldest connection that never sent a request makes room
RELOAD_CHECK_SECONDS = 1.0
BCRYPT_PER_SECOND = 5            # password checks not answered from the cache (bcrypt's CPU); beyond: 429
FRESH_BCRYPT_PER_SECOND = 2      # of those, for client addresses with no check in the last verdicts.FRESH_SECONDS
UNKNOWN_USERS_PER_SECOND = 5     # refusals of user names not in the file (no bcrypt: a wait as long); beyond: 429
BCRYPT_NICE = 19                 # the password checker's thread yields the CPU to everything else
REFUSED_CODES = (401, 403, 429, 503)    # what the guard answers instead of the page (counted from 0)


@dataclass
class Security:
    config: WebConfig = field(default_factory=WebConfig)
    basic: BasicAuth | None = None
    authorizer: Any = None                 # kube_authz.Authorizer with --web.authorization=kubernetes
    tls: ReloadingContext | None = None
    spoke: set = field(default_factory=set)     # connections that sent a request (handlers take no weakrefs)
    checker: ThreadPoolExecutor | None = None   # bcrypt's own low-priority thread, once a check needs it
    refused_requests: dict[int, int] = field(default_factory=lambda: dict.fromkeys(REFUSED_CODES, 0))  # by status
    capped: "_Capped | None" = None             # the connection ceiling once serving: its server and counts

    def password_checker(self) -> ThreadPoolExecutor:
        if self.checker is None:
            self.checker = ThreadPoolExecutor(1, "bcrypt", initializer=_lowest_priority)
        return self.checker

    def close(self) -> None:
        if self.checker is not None:
            self.checker.shutdown(wait=False, cancel_futures=True)
            self.checker = None
        if self.authorizer is not None:
            self.authorizer.close()


AUTHORIZATIONS = ("none", "kubernetes")


def application() -> web.Application:
    """An aiohttp application for either daemon, with the request-body bound of a scrape endpoint."""
    return web.Application(client_max_size=MAX_BODY)


def check(web_config_file: str, authorization: str) -> WebConfig:
    """The web flags' values, checked; ConfigError names the key."""
    if authorization not in AUTHORIZATIONS:
        raise ConfigError("web.authorization", f"expected {' or '.join(AUTHORIZATIONS)}, got {authorization!r}")
    return load(web_config_file) if web_config_file else WebConfig()


def security(web_config_file: str, authorization: str, api: Any = None) -> Security:
    """What the flags ask for; ConfigError names the key when they ask for something impossible."""
    config = check(web_config_file, authorization)
    authorizer = None
    if authorization == "kubernetes":
        if api is None:
            raise ConfigError("web.authorization", "kubernetes needs a Kubernetes API (in-cluster or --kubeconfig)")
        from .kube_authz import Authorizer
        authorizer = Authorizer(api)
    return Security(config=config, basic=BasicAuth(config.users) if config.users else None, authorizer=authorizer,
                    tls=ReloadingContext(config.tls) if config.tls else None)


def _too_many() -> web.Response:
    return web.Response(status=429, text="too many authentication attempts\n", headers={"Retry-After": "1"})


def _unauthorized(text: str, challenge: bool) -> web.Response:
    headers = {"WWW-Authenticate": REALM} if challenge else {}
    return web.Response(status=401, text=text + "\n", headers=headers)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _sans(peercert: dict | None) -> set[str]:
    out = set()
    for kind, value in (peercert or {}).get("subjectAltName", ()):
        if kind in ("DNS", "URI", "email"):
            out.add(value)
        elif kind == "IP Address":
            with contextlib.suppress(ValueError):
                out.add(str(ipaddress.ip_address(value.strip())))
    return out


def _source(request: web.BaseRequest) -> str:
    """Whose share of the password checks a request takes: its peer address, an IPv6 one by its
    /64 (what one host is usually given). Never a forwarded-for header: the client writes those."""
    remote = request.remote or ""
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ip.ipv4_mapped or ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _lowest_priority() -> None:
    # bcrypt costs ~70 ms of CPU a check by design. At the budget's 5 a second that is a third of a
    # core, and on a pod with one CPU the scheduler shares it evenly with the event loop, which then
    # answers the scrape late (flood p99 4.7x the quiet one, measured). At nice 19 the checker only
    # gets what the loop leaves idle. Linux gives each thread its own nice value; raising it needs no
    # privilege.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BCRYPT_NICE)


def middleware(sec: Security):
    bcrypt_slot = asyncio.Semaphore(1)
    # Checks of passwords not answered from the cache, in two lanes: a flood that does not know
    # the user names never reaches bcrypt, and one that does (it is "prometheus" more often than
    # not) spends only the share of addresses that were checked recently, so a client checking
    # its password for the first time since start (Prometheus after a restart or a password
    # change) finds the fresh share there, or waits its turn for it (verdicts.Lane).
    known = Lane(FRESH_BCRYPT_PER_SECOND, BCRYPT_PER_SECOND - FRESH_BCRYPT_PER_SECOND)
    unknown = Budget(UNKNOWN_USERS_PER_SECOND, UNKNOWN_USERS_PER_SECOND)
    allowed_sans = set(sec.config.tls.client_allowed_sans) if sec.config.tls else set()

    @web.middleware
    async def guard(request: web.Request, handler):
        sec.spoke.add(request.protocol)
        if len(sec.spoke) > 2 * MAX_CONNECTIONS and sec.capped is not None:
            sec.spoke &= set(sec.capped.server.connections)      # forget closed ones
        response = await _check(request) if request.path not in OPEN_PATHS else None
        if response is None:
            return await handler(request)
        sec.refused_requests[response.status] = sec.refused_requests.get(response.status, 0) + 1
        return response

    async def _check(request: web.Request) -> web.Response | None:
        if allowed_sans:
            peer = request.transport.get_extra_info("peercert") if request.transport else None
            if not _sans(peer) & allowed_sans:
                return web.Response(status=403, text="client certificate not allowed\n")
        if sec.basic is not None:
            creds = _basic_credentials(request.headers.get("Authorization", ""))
            if creds is None:
                return _unauthorized("basic authentication required", True)
            user, password = creds
            ok = sec.basic.cached(user, password)
            if ok is None and not sec.basic.knows(user):
                # No bcrypt for a user name the file does not have, but a refusal as late as one
                # (so timing does not tell names apart when the daemon is quiet), budgeted apart.
                if not unknown.take():
                    return _too_many()
                await asyncio.sleep(sec.basic.bcrypt_seconds)
                ok = sec.basic.refuse(user, password)
            elif ok is None:
                # bcrypt off the event loop, one at a time, at most BCRYPT_PER_SECOND and at the lowest
                # CPU priority: a flood of made-up passwords then costs a fraction of a core and gets
                # 429. A pair verified once never comes here again (refusals cannot push it out of
                # BasicAuth's allowed pairs), so the scrape never waits for the flood's checks.
                if not await known.take(_source(request)):
                    return _too_many()
                started = time.monotonic()
                async with bcrypt_slot:
                    ok = await asyncio.get_running_loop().run_in_executor(
                        sec.password_checker(), sec.basic.check, user, password)
                sec.basic.took(time.monotonic() - started)
            if not ok:
                log.info("web_auth_refused", user=user, remote=request.remote, path=request.path)
                return _unauthorized("wrong user name or password", True)
        if sec.authorizer is not None:
            return await sec.authorizer.check(request)
        return None

    return guard


class _Gate(asyncio.Protocol):
    """Stands in front of aiohttp's protocol and decides in connection_made, when the count of open
    connections is exact (a factory call is not: asyncio accepts a burst of connections before any of
    them is made), then forwards everything to aiohttp's handler."""

    def __init__(self, capped: "_Capped") -> None:
        self.capped = capped
        self.inner: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.capped.admit():
            transport.close()
            return
        self.inner = self.capped.server()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


class _Capped:
    """A ceiling on open connections. At the ceiling the oldest connection that has never sent a
    request is closed to make room (what a flood of idle or slowloris clients holds), so Prometheus's
    scrape still gets in; if every connection has sent one, the newcomer is closed instead."""

    def __init__(self, server: web.Server, limit: int, spoke: set) -> None:
        self.server, self.limit, self.spoke = server, limit, spoke
        self.evicted = self.refused_connections = 0

    def __call__(self) -> asyncio.BaseProtocol:
        return _Gate(self)

    def admit(self) -> bool:
        connections = [c for c in self.server.connections if c.transport is not None]   # closed ones linger
        if len(connections) < self.limit:
            return True
        self.spoke &= set(connections)
        victim = next((c for c in connections if c not in self.spoke), None)
        if victim is None:
            self.refused_connections += 1
            return False
        victim.force_close()
        self.evicted += 1
        return True


@dataclass
class Served:
    runner: web.AppRunner
    server: asyncio.Server
    watcher: asyncio.Task | None
    sec: Security

    async def close(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        self.server.close()
        await self.runner.cleanup()
        self.sec.close()


async def serve(app: web.Application, host: str | None, port: int, sec: Security, listen: str) -> Served:
    """Start `app` on host:port with `sec` applied; ConfigError when the address cannot be bound."""
    app.middlewares.append(middleware(sec))
    headers = sec.config.headers

    async def add_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
        # As the headers go out: streamed responses and aiohttp's own error pages get them too.
        for name, value in headers:
            response.headers[name] = value
    if headers:
        app.on_response_prepare.append(add_headers)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=KEEPALIVE_SECONDS, max_line_size=MAX_LINE,
                           max_field_size=MAX_LINE)
    await runner.setup()
    assert runner.server is not None
    ctx = sec.tls.context if sec.tls else None
    try:
        sec.capped = _Capped(runner.server, MAX_CONNECTIONS, sec.spoke)
        server = await asyncio.get_running_loop().create_server(
            sec.capped, host or None, port, ssl=ctx, backlog=128, reuse_address=True,
            ssl_handshake_timeout=HANDSHAKE_SECONDS if ctx else None)
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError("web.listen-address", f"cannot listen on {listen}: {exc.strerror}") from None
    watcher = asyncio.create_task(_watch(sec.tls)) if sec.tls else None
    return Served(runner, server, watcher, sec)


async def _watch(tls: ReloadingContext) -> None:
    while True:
        await asyncio.sleep(RELOAD_CHECK_SECONDS)
        if await asyncio.to_thread(tls.check):
            log.info("web_tls_reloaded", cert_file=str(tls.tls.cert_file), reloads=tls.reloads)
        elif tls.last_error:
            log.warning("web_tls_reload_failed", cert_file=str(tls.tls.cert_file), error=tls.last_error,
                        note="still serving the previous certificate")
            tls.last_error = ""
