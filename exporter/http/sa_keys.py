"""The cluster's service-account signing keys, to tell a token the API server minted from a
made-up one before a review is spent on it (kube_authz.py). The API server publishes them as a
JSON Web Key Set at /openid/v1/jwks (service-account issuer discovery; every service account may
read it through the default system:service-account-issuer-discovery binding, and the deploy/
overlays bind it for the exporter as well).

A token is *signed* when it is a compact JWS whose header names an algorithm the API server signs
with (RS256 for an RSA key, ES256/ES384/ES512 for an EC one) and a key id of the set (a token
without one is tried against the set's keys of that type), whose signature verifies with that
key, and which has not expired nor is not yet valid (exp, nbf, with the 60 s leeway the API
server allows). The algorithm must be the key's: "none", HMAC, or RS256 with an EC key is not
signed, whatever the rest says. Issuer and audience are left to the TokenReview: those keys sign
nothing but service-account tokens, so a token they verify was minted by the cluster (legacy
Secret tokens with the issuer "kubernetes/serviceaccount" and no expiry too), and checking them
here would send a token of a cluster with several issuers or API audiences of its own (EKS, STS)
back into the lane of made-up tokens.
"""

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

JWKS_PATH = "/openid/v1/jwks"
LEEWAY = 60.0                  # go-jose's default leeway, which the API server's validation uses
MAX_TOKEN = 16 * 1024          # request headers are 8 KiB at most; anything longer is not ours to parse
# Algorithm -> (key type, hash, EC curve name, bytes of r and of s).
ALGORITHMS: dict[str, tuple[str, type[hashes.HashAlgorithm], str, int]] = {
    "RS256": ("RSA", hashes.SHA256, "", 0),
    "ES256": ("EC", hashes.SHA256, "P-256", 32),
    "ES384": ("EC", hashes.SHA384, "P-384", 48),
    "ES512": ("EC", hashes.SHA512, "P-521", 66),
}
CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}


@dataclass(frozen=True)
class Jws:
    """A token's parts, as far as they parse: nothing here is trusted before verify()."""
    alg: str
    kid: str
    signed: bytes          # header.payload, what the signature covers
    payload: str
    signature: bytes


@dataclass(frozen=True)
class Signed:
    """Who a verified token says it is: the lane it is budgeted in goes by this."""
    subject: str
    pod: str


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def parse(token: str) -> Jws | None:
    """The parts of a compact JWS with an algorithm the API server signs with, else None."""
    if len(token) > MAX_TOKEN or token.count(".") != 2:
        return None
    head, payload, signature = token.split(".")
    try:
        header = json.loads(_b64(head))
        sig = _b64(signature)
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS or "crit" in header:
        return None
    kid = header.get("kid", "")
    return Jws(header["alg"], kid if isinstance(kid, str) else "", f"{head}.{payload}".encode(), payload, sig)


def _key(jwk: Any) -> tuple[str, Any] | None:
    """(algorithm, public key) of a JWK the API server would sign with, else None."""
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
        return None
    try:
        if jwk.get("kty") == "RSA":
            n, e = (int.from_bytes(_b64(jwk[k]), "big") for k in ("n", "e"))
            return "RS256", rsa.RSAPublicNumbers(e, n).public_key()
        if jwk.get("kty") == "EC" and jwk.get("crv") in CURVES:
            alg = next(a for a, spec in ALGORITHMS.items() if spec[2] == jwk["crv"])
            x, y = (int.from_bytes(_b64(jwk[k]), "big") for k in ("x", "y"))
            return alg, ec.EllipticCurvePublicNumbers(x, y, CURVES[jwk["crv"]]).public_key()
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None
    return None


class Keys:
    """The key set last fetched: key id -> (algorithm, public key)."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, Any]] = {}

    def load(self, jwks: Any) -> int:
        """Take the keys of a JWKS document; returns how many are usable."""
        keys = {}
        for jwk in (jwks.get("keys") if isinstance(jwks, dict) else None) or []:
            key = _key(jwk)
            if key is not None:
                keys[str(jwk.get("kid", ""))] = key
        self.keys = keys
        return len(keys)

    def knows(self, jws: Jws) -> bool:
        """Whether the set has a key this token could be signed with (else it may be a new key)."""
        if jws.kid:
            return jws.kid in self.keys
        return any(alg == jws.alg for alg, _ in self.keys.values())

    def verify(self, jws: Jws, now: float | None = None) -> Signed | None:
        """Who a token signed with one of the keys, and valid now, names; None for any other."""
        candidates = [self.keys[jws.kid]] if jws.kid in self.keys else [] if jws.kid else list(self.keys.values())
        if not any(alg == jws.alg and _valid(jws, key) for alg, key in candidates):
            return None
        try:
            claims = json.loads(_b64(jws.payload))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(claims, dict):
            return None
        now = time.time() if now is None else now
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if (isinstance(exp, int | float) and now > exp + LEEWAY) or (isinstance(nbf, int | float) and now < nbf - LEEWAY):
            return None
        pod = (claims.get("kubernetes.io") or {}).get("pod") if isinstance(claims.get("kubernetes.io"), dict) else None
        return Signed(str(claims.get("sub", "")), str(pod.get("name", "")) if isinstance(pod, dict) else "")


def _valid(jws: Jws, key: Any) -> bool:
    _, hash_type, _, size = ALGORITHMS[jws.alg]
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(jws.signature, jws.signed, padding.PKCS1v15(), hash_type())
        else:
            if len(jws.signature) != 2 * size:
                return False
            r, s = int.from_bytes(jws.signature[:size], "big"), int.from_bytes(jws.signature[size:], "big")
            key.verify(encode_dss_signature(r, s), jws.signed, ec.ECDSA(hash_type()))
    except (InvalidSignature, ValueError):
        return False
    return True
