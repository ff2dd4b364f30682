"""`--web.config.file`: TLS and basic auth for the HTTP endpoints, in the file format of the
Prometheus exporter-toolkit (docs/web-configuration.md there), with its keys and meanings:

    tls_server_config: {cert_file, key_file, client_auth_type, client_ca_file, client_allowed_sans,
                        min_version, max_version, cipher_suites, curve_preferences, prefer_server_cipher_suites}
    http_server_config: {headers: {...}, http2: ...}
    basic_auth_users: {user: bcrypt hash}

Where Python's ssl cannot do what Go's crypto/tls does, the file is refused with the reason instead of
being half-applied: `RequestClientCert` and `RequireAnyClientCert` (Python verifies every client
certificate it asks for), and several `curve_preferences` (Python sets one ECDH curve).
Every error names the key, like every other configuration error (exit code 2).
"""

import hashlib
import hmac
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config.settings import ConfigError
from .verdicts import Verdicts

KEY = "web.config.file"
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
UNSUPPORTED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1, "TLS12": ssl.TLSVersion.TLSv1_2,
            "TLS13": ssl.TLSVersion.TLSv1_3}
# Go's names for the TLS 1.2 suites it offers -> OpenSSL's (TLS 1.3 suites are not configurable in Go either).
CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}
# The response headers exporter-toolkit lets a file set, and nothing else.
HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "X-XSS-Protection",
           "Strict-Transport-Security")
# Verified (user, password) pairs kept: only a client with a right password adds one, so the
# flood cannot push Prometheus's out. Refused pairs kept: a client repeating a wrong password is
# answered without a bcrypt.
ALLOWED_PAIRS = 256
DENIED_PAIRS = 256
TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "client_allowed_sans", "min_version",
            "max_version", "cipher_suites", "curve_preferences", "prefer_server_cipher_suites"}


@dataclass(frozen=True)
class TlsSettings:
    cert_file: Path
    key_file: Path
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    client_ca_file: Path | None = None
    client_allowed_sans: tuple[str, ...] = ()
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED
    ciphers: tuple[str, ...] = ()
    curve: str = ""
    prefer_server_ciphers: bool = True


@dataclass(frozen=True)
class WebConfig:
    tls: TlsSettings | None = None
    headers: tuple[tuple[str, str], ...] = ()
    users: dict[str, bytes] = field(default_factory=dict)      # user -> bcrypt hash


def _fail(where: str, why: str) -> ConfigError:
    return ConfigError(KEY, f"{where}: {why}")


def _mapping(doc: Any, where: str, allowed: set[str]) -> dict:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise _fail(where, f"expected a mapping, got {type(doc).__name__}")
    for key in doc:
        if key not in allowed:
            raise _fail(f"{where}.{key}" if where else str(key), "unknown key")
    return doc


def _text(doc: dict, key: str, where: str) -> str:
    value = doc.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(f"{where}.{key}", f"expected a string, got {value!r}")
    return value


def _strings(doc: dict, key: str, where: str) -> list[str]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(f"{where}.{key}", "expected a list of strings")
    return value


def _file(base: Path, name: str, where: str) -> Path:
    path = (base / name) if not os.path.isabs(name) else Path(name)
    if not path.is_file():
        raise _fail(where, f"{path} is not a readable file")
    return path


def load(path: str) -> WebConfig:
    """Parse and check a web config file; every problem is a ConfigError naming the key."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(KEY, f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(KEY, f"{path} is not YAML: {str(exc).splitlines()[0]}") from None
    top = _mapping(doc, "", {"tls_server_config", "http_server_config", "basic_auth_users"})
    base = Path(path).resolve().parent          # relative paths are relative to the file, as in exporter-toolkit
    return WebConfig(tls=_tls(top.get("tls_server_config"), base), headers=_headers(top.get("http_server_config")),
                     users=_users(top.get("basic_auth_users")))


def _tls(doc: Any, base: Path) -> TlsSettings | None:
    where = "tls_server_config"
    tls = _mapping(doc, where, TLS_KEYS)
    if not tls:
        return None
    cert, key = _text(tls, "cert_file", where), _text(tls, "key_file", where)
    if not cert or not key:
        raise _fail(where, "cert_file and key_file are both required")
    auth_type = _text(tls, "client_auth_type", where) or "NoClientCert"
    if auth_type in UNSUPPORTED_CLIENT_AUTH:
        raise _fail(f"{where}.client_auth_type", f"{auth_type} is not supported (Python's TLS verifies every client "
                                                 "certificate it asks for): use VerifyClientCertIfGiven or "
                                                 "RequireAndVerifyClientCert")
    if auth_type not in CLIENT_AUTH:
        raise _fail(f"{where}.client_auth_type", f"expected one of {', '.join(CLIENT_AUTH)}, got {auth_type!r}")
    ca_name = _text(tls, "client_ca_file", where)
    if CLIENT_AUTH[auth_type] != ssl.CERT_NONE and not ca_name:
        raise _fail(f"{where}.client_ca_file", f"required with client_auth_type {auth_type}")
    versions = {}
    for k, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        name = _text(tls, k, where) or default
        if name not in VERSIONS:
            raise _fail(f"{where}.{k}", f"expected one of {', '.join(VERSIONS)}, got {name!r}")
        versions[k] = VERSIONS[name]
    if versions["min_version"] > versions["max_version"]:
        raise _fail(f"{where}.min_version", "is above max_version")
    ciphers = []
    for name in _strings(tls, "cipher_suites", where):
        if name not in CIPHERS:
            raise _fail(f"{where}.cipher_suites", f"unknown cipher suite {name!r}")
        ciphers.append(CIPHERS[name])
    curves = _strings(tls, "curve_preferences", where)
    for name in curves:
        if name not in CURVES:
            raise _fail(f"{where}.curve_preferences", f"unknown curve {name!r}")
    if len(curves) > 1:
        raise _fail(f"{where}.curve_preferences", "only one curve can be set here (Python's ssl sets one ECDH curve)")
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise _fail(f"{where}.prefer_server_cipher_suites", f"expected true or false, got {prefer!r}")
    settings = TlsSettings(
        cert_file=_file(base, cert, f"{where}.cert_file"), key_file=_file(base, key, f"{where}.key_file"),
        client_auth=CLIENT_AUTH[auth_type],
        client_ca_file=_file(base, ca_name, f"{where}.client_ca_file") if ca_name else None,
        client_allowed_sans=tuple(_strings(tls, "client_allowed_sans", where)),
        min_version=versions["min_version"], max_version=versions["max_version"], ciphers=tuple(ciphers),
        curve=CURVES[curves[0]] if curves else "", prefer_server_ciphers=prefer)
    try:
        build_context(settings)        # a key that does not match its certificate fails here, at start
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise _fail(where, f"cannot use the certificate or key: {exc}") from None
    return settings


def _headers(doc: Any) -> tuple[tuple[str, str], ...]:
    where = "http_server_config"
    http = _mapping(doc, where, {"headers", "http2"})
    if "http2" in http and not isinstance(http["http2"], bool):
        raise _fail(f"{where}.http2", "expected true or false")
    headers = _mapping(http.get("headers"), f"{where}.headers", set(HEADERS))
    out = []
    for name, value in headers.items():
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise _fail(f"{where}.headers.{name}", "expected a one-line string")
        out.append((name, value))
    return tuple(out)


def _users(doc: Any) -> dict[str, bytes]:
    users = doc or {}
    if not isinstance(users, dict):
        raise _fail("basic_auth_users", "expected a mapping of user name to bcrypt hash")
    out = {}
    for user, hashed in users.items():
        if not isinstance(user, str) or not user or ":" in user:
            raise _fail("basic_auth_users", f"user names are non-empty strings without ':', got {user!r}")
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")) or len(hashed) != 60:
            raise _fail(f"basic_auth_users.{user}", "expected a bcrypt hash ($2a$/$2b$/$2y$, 60 characters)")
        out[user] = hashed.encode()
    return out


def build_context(tls: TlsSettings) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version, ctx.maximum_version = tls.min_version, tls.max_version
    ctx.load_cert_chain(tls.cert_file, tls.key_file)
    ctx.verify_mode = tls.client_auth
    if tls.client_ca_file:
        ctx.load_verify_locations(cafile=str(tls.client_ca_file))
    if tls.ciphers:
        ctx.set_ciphers(":".join(tls.ciphers))
    if tls.curve:
        ctx.set_ecdh_curve(tls.curve)
    if tls.prefer_server_ciphers:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


class ReloadingContext:
    """One SSLContext for the server's life; its certificate, key and client CA are loaded again
    when their files change (service-ca and cert-manager rotate them in place), so the next
    handshake uses the new ones. A half-written or mismatched pair keeps the old one and is retried."""

    def __init__(self, tls: TlsSettings) -> None:
        self.tls = tls
        self.context = build_context(tls)
        self._stamp = self._stamps()
        self.reloads = 0
        self.last_error = ""

    def _stamps(self) -> tuple:
        out = []
        for path in (self.tls.cert_file, self.tls.key_file, self.tls.client_ca_file):
            try:
                st = os.stat(path) if path else None
                out.append((st.st_mtime_ns, st.st_size, st.st_ino) if st else None)
            except OSError:
                out.append(None)
        return tuple(out)

    def check(self) -> bool:
        """Reload if a file changed; True when it did reload. Cheap: three stat() calls."""
        stamp = self._stamps()
        if stamp == self._stamp:
            return False
        try:
            self.context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
            if self.tls.client_ca_file:
                self.context.load_verify_locations(cafile=str(self.tls.client_ca_file))
        except (ssl.SSLError, OSError) as exc:
            self.last_error = str(exc)
            return False           # keep serving the old pair; the stamp stays old, so it is tried again
        self._stamp = stamp
        self.reloads += 1
        self.last_error = ""
        return True


class BasicAuth:
    """bcrypt checks, remembered: bcrypt costs tens of ms by design, and Prometheus sends the same
    credentials every scrape. Pairs bcrypt accepted and pairs it refused are kept apart, bounded
    each, as keyed digests (never passwords) of the user, the password and the user's stored hash:
    made-up passwords, however many, only push out other refusals, so a pair verified once stays
    a look-up; a user name alone is worth nothing (its pair with a wrong password is a refusal);
    and a user whose hash changes starts over. check() costs a bcrypt for an unknown user too;
    the guard refuses one without (refuse()), after as long as a bcrypt takes (bcrypt_seconds),
    so timing does not tell users apart."""

    def __init__(self, users: dict[str, bytes], allowed_size: int = ALLOWED_PAIRS,
                 denied_size: int = DENIED_PAIRS) -> None:
        import bcrypt
        self._bcrypt = bcrypt
        self.users = users
        cost = int(next(iter(users.values()))[4:6]) if users else 10
        started = time.monotonic()
        self._dummy = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(rounds=cost))
        self.bcrypt_seconds = time.monotonic() - started       # how long a check takes, as measured lately
        self._secret = os.urandom(32)
        self._allowed: Verdicts[bool] = Verdicts(allowed_size)
        self._denied: Verdicts[bool] = Verdicts(denied_size)
        self._lock = threading.Lock()
        self.bcrypt_calls = 0

    def _digest(self, user: str, password: str) -> bytes:
        material = b"\0".join((user.encode(), password.encode(), self.users.get(user, b"")))
        return hmac.new(self._secret, material, hashlib.sha256).digest()

    def cached(self, user: str, password: str) -> bool | None:
        """True for a pair bcrypt accepted, False for one it refused, else None (then call check,
        off the event loop)."""
        digest = self._digest(user, password)
        with self._lock:
            if self._allowed.get(digest) is not None:
                return True
            if self._denied.get(digest) is not None:
                return False
        return None

    def knows(self, user: str) -> bool:
        return user in self.users

    def refuse(self, user: str, password: str) -> bool:
        """Remember a pair as refused without a bcrypt (a user name not in the file)."""
        with self._lock:
            self._denied.put(self._digest(user, password), False)
        return False

    def took(self, seconds: float) -> None:
        """A check took this long, waits included: what a refusal without one waits."""
        self.bcrypt_seconds += (seconds - self.bcrypt_seconds) / 8

    def check(self, user: str, password: str) -> bool:
        known = self.cached(user, password)
        if known is not None:
            return known
        hashed = self.users.get(user)
        self.bcrypt_calls += 1
        try:
            ok = self._bcrypt.checkpw(password.encode(), hashed or self._dummy) and hashed is not None
        except ValueError:
            ok = False
        with self._lock:
            (self._allowed if ok else self._denied).put(self._digest(user, password), ok)
        return ok
