"""What the backends that speak HTTPS to a management endpoint share (FlashSystem REST, the VPC
API, vCenter): the TLS context, addresses, and one lazily opened aiohttp session."""

import ssl
from pathlib import Path

import aiohttp

from .base import BackendError


def tls_context(ca_file: Path | None, insecure: bool = False) -> ssl.SSLContext:
    """Certificates checked against `ca_file`, or the system's CAs; `insecure` (labs only) checks nothing."""
    if insecure:
        return ssl._create_unverified_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise BackendError(f"cannot load the CA bundle {ca_file}: {exc}") from None


def host_port(address: str, default_port: int) -> tuple[str, int]:
    """(host, port) of "host", "host:port", "[v6]:port" or a bare IPv6 address; the host unbracketed."""
    if address.startswith("["):
        end = address.find("]")
        host, rest = address[1:end], address[end + 1:]
        number = rest[1:] if rest.startswith(":") else ""
    elif address.count(":") == 1:
        host, _, number = address.partition(":")
    else:
        host, number = address, ""
    return host, int(number) if number.isascii() and number.isdigit() else default_port


class LazySession:
    """An aiohttp session opened at first use (inside the event loop, where the TLS settings turn
    into an error the refresh can report) and reopened after close()."""

    def __init__(self, ca_file: Path | None, insecure: bool, timeout: aiohttp.ClientTimeout) -> None:
        self.ca_file, self.insecure, self.timeout = ca_file, insecure, timeout
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # aiohttp's ssl=False is "no check at all", which is what insecure means here too.
            ssl_arg = False if self.insecure else tls_context(self.ca_file)
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_arg, limit=8),
                                                  timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
