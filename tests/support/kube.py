"""The Kubernetes API for tests: kmock's KubernetesEmulator over real HTTP, on its own thread.

The exporter and the tests both talk to it with the official `kubernetes` client. The subclass
closes the kmock 0.8 gaps we hit (see docs/testing.md): creates answer 201 and store the
namespace from the URL and a uid; a delete with a uid precondition that the object does not
have answers 409 Conflict; a watch can be told to answer 410 Gone like a real API server does
when a resourceVersion is too old; lists honour `limit` with continue tokens over a snapshot, and
a continue token can be made to expire (410), as etcd's compaction does. It also serves the
service-account issuer's discovery document and keys (/.well-known/openid-configuration,
/openid/v1/jwks) and mints bound service-account tokens signed with that key (issue()), which
its TokenReview then accepts.
"""

import asyncio
import base64
import collections
import hashlib
import itertools
import json
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import attrs
import kmock
import yaml
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from kubernetes import client as k8s

DECLARED = {
    "v1/persistentvolumeclaims": True,
    "v1/persistentvolumes": False,
    "storage.k8s.io/v1/storageclasses": False,
    "cdi.kubevirt.io/v1beta1/datavolumes": True,
    "cdi.kubevirt.io/v1beta1/storageprofiles": False,
    "cdi.kubevirt.io/v1beta1/datasources": True,
    "snapshot.storage.k8s.io/v1/volumesnapshots": True,
    "snapshot.storage.k8s.io/v1/volumesnapshotcontents": False,
    "cdi.kubevirt.io/v1beta1/cdis": False,
    "batch/v1/jobs": True,
    "authentication.k8s.io/v1/tokenreviews": False,
    "authorization.k8s.io/v1/subjectaccessreviews": False,
    # volumeclonesources deliberately undeclared: the API answers 404, as for a missing CRD.
    # KubeVirt (OpenShift Virtualization), at the versions KubeVirt 1.5 and later serve.
    "kubevirt.io/v1/virtualmachines": True,
    "clone.kubevirt.io/v1beta1/virtualmachineclones": True,
    "snapshot.kubevirt.io/v1beta1/virtualmachinesnapshots": True,
    "snapshot.kubevirt.io/v1beta1/virtualmachinesnapshotcontents": True,
    "snapshot.kubevirt.io/v1beta1/virtualmachinerestores": True,
}


KEEP_REQUESTS = 256         # of kmock's record of requests served (see Emulator._handle)
ISSUER = "https://kubernetes.default.svc"     # the API server's default --service-account-issuer
JWKS_PATH = "/openid/v1/jwks"
DISCOVERY_PATH = "/.well-known/openid-configuration"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_id(public_key) -> str:
    """The API server's key id: the unpadded base64url SHA-256 of the public key's DER (SubjectPublicKeyInfo)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64(hashlib.sha256(der).digest())


def jwk(public_key) -> dict:
    """A key as /openid/v1/jwks lists it: RSA with RS256, EC with ES256/384/512 by its curve."""
    def b64int(n: int, size: int = 0) -> str:
        return _b64(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))
    numbers = public_key.public_numbers()
    if isinstance(public_key, rsa.RSAPublicKey):
        return {"use": "sig", "kty": "RSA", "kid": key_id(public_key), "alg": "RS256",
                "n": b64int(numbers.n), "e": b64int(numbers.e)}
    crv, alg, size = {"secp256r1": ("P-256", "ES256", 32), "secp384r1": ("P-384", "ES384", 48),
                      "secp521r1": ("P-521", "ES512", 66)}[public_key.curve.name]
    return {"use": "sig", "kty": "EC", "kid": key_id(public_key), "alg": alg, "crv": crv,
            "x": b64int(numbers.x, size), "y": b64int(numbers.y, size)}


def sign_jwt(private_key, claims: dict, header: dict | None = None) -> str:
    """A compact JWS as the API server signs a service-account token (RS256, or ES256/384/512 for an EC key)."""
    public = private_key.public_key()
    spec = jwk(public)
    header = header if header is not None else {"alg": spec["alg"], "kid": spec["kid"]}
    signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if isinstance(private_key, rsa.RSAPrivateKey):
        signature = private_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        size = {"ES256": 32, "ES384": 48, "ES512": 66}[spec["alg"]]
        digest = {"ES256": hashes.SHA256, "ES384": hashes.SHA384, "ES512": hashes.SHA512}[spec["alg"]]
        r, s = decode_dss_signature(private_key.sign(signed.encode(), ec.ECDSA(digest())))
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return f"{signed}.{_b64(signature)}"


def token_claims(username: str, uid: str = "", lifetime: int = 3600, pod: str = "prometheus-k8s-0",
                 now: int | None = None) -> dict:
    """The claims TokenRequest writes into a bound service-account token for a pod."""
    _, _, namespace, name = username.split(":", 3)
    now = int(time.time()) if now is None else now
    return {"aud": [ISSUER], "exp": now + lifetime, "iat": now, "iss": ISSUER, "jti": str(uuid.uuid4()),
            "kubernetes.io": {"namespace": namespace, "pod": {"name": pod, "uid": str(uuid.uuid4())},
                              "serviceaccount": {"name": name, "uid": uid}, "warnafter": now + lifetime // 2},
            "nbf": now, "sub": username}


PATHS = {   # kinds the tests delete through the raw API
    "VolumeSnapshot": "/apis/snapshot.storage.k8s.io/v1/namespaces/{namespace}/volumesnapshots",
    "VolumeSnapshotContent": "/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents",
    "DataSource": "/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datasources",
    "DataVolume": "/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes",
    "CDI": "/apis/cdi.kubevirt.io/v1beta1/cdis",
    "PersistentVolumeClaim": "/api/v1/namespaces/{namespace}/persistentvolumeclaims",
    "VirtualMachine": "/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachines",
    "VirtualMachineClone": "/apis/clone.kubevirt.io/v1beta1/namespaces/{namespace}/virtualmachineclones",
    "VirtualMachineSnapshot": "/apis/snapshot.kubevirt.io/v1beta1/namespaces/{namespace}/virtualmachinesnapshots",
    "VirtualMachineSnapshotContent":
        "/apis/snapshot.kubevirt.io/v1beta1/namespaces/{namespace}/virtualmachinesnapshotcontents",
    "VirtualMachineRestore": "/apis/snapshot.kubevirt.io/v1beta1/namespaces/{namespace}/virtualmachinerestores",
}


@attrs.frozen
class ContinueExpired(kmock.KubernetesError):
    """What the API server answers for a continue token whose revision etcd has compacted."""
    status: int = 410
    reason: str = "Expired"
    message: str = ("The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter.")


class Emulator(kmock.KubernetesEmulator):
    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.expire_watches: set[str] = set()
        self.garbage_watches: set[str] = set()     # next watch sends a line that is not JSON
        self.garbage_served = 0                    # how many such lines went out (tests wait on it)
        self.preconditions_failed = 0              # deletes refused: the object's uid was not the one named
        self.expired_served = 0                    # how many 410s went out
        self.list_delay = 0.0                      # seconds every list takes (a slow API server)
        self.namespace_list_delay: dict[str, float] = {}   # namespace -> seconds more its lists take
        self.lists_served: list[tuple[str, str, float]] = []   # (plural, namespace, time.time()) per list answered
        self.lists_asked: list[tuple[str, str, float]] = []    # the same per list request, on arrival
        # TokenReview / SubjectAccessReview, answered as the API server's authenticator and RBAC
        # would: token -> user info, and which (user, non-resource path, verb) are allowed.
        self.tokens: dict[str, dict] = {}
        self.allowed: set[tuple[str, str, str]] = set()
        self.reviews = {"tokenreviews": 0, "subjectaccessreviews": 0}
        self.reviewed_tokens: collections.Counter[str] = collections.Counter()   # TokenReviews by token
        self.pages_served = 0                      # list pages answered with a continue token
        self.expire_continues = 0                  # this many continue tokens presented next get 410
        self.continues_expired = 0
        self._rests: dict[str, list] = {}          # continue token -> the rest of its list
        self._tokens = itertools.count(1)
        # The service-account signing key, as the API server's: RSA 2048, RS256.
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = key_id(self.signing_key.public_key())
        self.keys_served = 0                       # GETs of /openid/v1/jwks

    def jwks(self) -> dict:
        return {"keys": [jwk(self.signing_key.public_key())]}

    def issue(self, username: str, uid: str = "", lifetime: int = 3600, pod: str = "prometheus-k8s-0") -> str:
        """A bound service-account token as the kubelet gets one through TokenRequest for a pod,
        signed with the signing key, and an entry in `tokens` with the user TokenReview answers for it."""
        claims = token_claims(username, uid, lifetime, pod)
        token = sign_jwt(self.signing_key, claims)
        namespace = claims["kubernetes.io"]["namespace"]
        self.tokens[token] = {
            "username": username, "uid": uid,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"],
                      "authentication.kubernetes.io/pod-name": [pod],
                      "authentication.kubernetes.io/pod-uid": [claims["kubernetes.io"]["pod"]["uid"]]}}
        return token

    async def _serve_list(self, request):
        self.lists_asked.append((getattr(request.resource, "plural", ""), request.namespace or "", time.time()))
        delay = self.list_delay + self.namespace_list_delay.get(request.namespace or "", 0.0)
        if delay:
            await asyncio.sleep(delay)
        try:
            return await self._page(request)
        finally:
            self.lists_served.append((getattr(request.resource, "plural", ""), request.namespace or "", time.time()))

    async def _page(self, request):
        # As the API server pages: `limit` items and a continue token for the rest, which reads the
        # same snapshot (etcd serves later pages at the first page's revision) until it expires.
        token = request.params.get("continue")
        if token:
            rest = self._rests.pop(token, None)
            if rest is None or self.expire_continues:
                self.expire_continues = max(0, self.expire_continues - 1)
                self.continues_expired += 1
                # Raised, not returned as kmock.Response(410): kmock keeps a returned status on its
                # list reaction, and every later list would answer 410 too.
                raise ContinueExpired()
            payload = {"metadata": {"resourceVersion": "..."}, "items": rest}
        else:
            payload = await super()._serve_list(request)
        limit = int(request.params.get("limit") or 0)
        items = payload["items"]
        if limit <= 0 or len(items) <= limit:
            return payload
        token = f"page-{next(self._tokens)}"
        self._rests[token] = items[limit:]
        self.pages_served += 1
        return {"metadata": {**payload["metadata"], "continue": token, "remainingItemCount": len(items) - limit},
                "items": items[:limit]}

    async def burst(self, resource: str, objects: list[dict]) -> None:
        """Add many objects at once and tell every watcher, as a busy API server would."""
        res = kmock.resource(resource)
        for obj in objects:
            meta = obj["metadata"]
            self.objects[resource, meta.get("namespace"), meta["name"]] = obj
        bus = self._buses[res]
        for obj in objects:
            await bus.put({"type": "ADDED", "object": obj})

    async def _handle(self, request):
        # kmock records every request and matches each new one by walking that record (O(n) a
        # request): over a long module the emulator slowed until the test playing CDI missed its
        # 60 s. Nothing here asserts on kmock's record, so only the latest requests are kept; this
        # one, just appended, is among them.
        if len(self._requests) > 2 * KEEP_REQUESTS:
            del self._requests[:-KEEP_REQUESTS]
        # The service-account issuer's discovery, as the API server serves it (readable through
        # the system:service-account-issuer-discovery ClusterRole).
        if request.method == "GET" and request.url.path == JWKS_PATH:
            self.keys_served += 1
            return web.Response(text=json.dumps(self.jwks()), content_type="application/jwk-set+json")
        if request.method == "GET" and request.url.path == DISCOVERY_PATH:
            return web.json_response({"issuer": ISSUER, "jwks_uri": f"https://10.0.0.1:6443{JWKS_PATH}",
                                      "response_types_supported": ["id_token"],
                                      "subject_types_supported": ["public"],
                                      "id_token_signing_alg_values_supported": ["RS256"]})
        data = request.data
        if getattr(request.resource, "plural", None) in self.reviews and isinstance(data, dict):
            # Answered here, as the API server does: never stored, and past kmock's reaction
            # matching, which looks through every request served so far (a flood of reviews
            # slowed it from hundreds a second to a few).
            return web.json_response(self._review(request.resource.plural, data), status=201)
        if request.namespace and isinstance(data, dict) and isinstance(data.get("metadata"), dict):
            data["metadata"].setdefault("namespace", request.namespace)
        if request.method == "POST" and isinstance(data, dict) and isinstance(data.get("metadata"), dict):
            # The API server gives every object a uid when it is created (a test may name one in advance).
            data["metadata"].setdefault("uid", str(uuid.uuid4()))
        if request.method == "DELETE" and isinstance(data, dict) and (data.get("preconditions") or {}).get("uid"):
            # DeleteOptions.preconditions: the API server deletes only the object with that uid, else 409.
            want = data["preconditions"]["uid"]
            try:
                current = await self._serve_fetch(request)
            except Exception:           # not found: the delete answers 404 as usual
                current = None
            have = ((current or {}).get("metadata") or {}).get("uid", "")
            if current is not None and have != want:
                self.preconditions_failed += 1
                return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
                                          "code": 409, "message": f"Precondition failed: UID in precondition: {want}, "
                                                                  f"UID in object meta: {have}"}, status=409)
        return await super()._handle(request)

    async def _serve_create(self, request):
        raw = await super()._serve_create(request)
        return kmock.Response(status=201, payload=raw)

    def _review(self, plural: str, review: dict) -> dict:
        """The status the API server writes into a review (authentication.k8s.io/v1, authorization.k8s.io/v1)."""
        self.reviews[plural] += 1
        spec = review.get("spec") or {}
        if plural == "tokenreviews":
            self.reviewed_tokens[spec.get("token", "")] += 1
            user = self.tokens.get(spec.get("token", ""))
            status = {"authenticated": True, "user": user, "audiences": ["https://kubernetes.default.svc"]} \
                if user else {"authenticated": False, "error": "invalid bearer token"}
        else:
            attrs = spec.get("nonResourceAttributes") or {}
            ok = (spec.get("user"), attrs.get("path"), attrs.get("verb")) in self.allowed
            status = {"allowed": ok} if ok else {"allowed": False, "reason": "no RBAC policy matched"}
        return {**review, "status": status}

    async def _serve_watch(self, request):
        plural = getattr(request.resource, "plural", None)
        if plural in self.garbage_watches:
            self.garbage_watches.discard(plural)
            yield b""
            yield b'{"type": "ADDED", "object": {"metadata": {"name": "x"'     # cut off mid-object
            yield b'\n'
            self.garbage_served += 1
            return
        if plural in self.expire_watches:
            self.expire_watches.discard(plural)
            yield b""
            yield {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                               "reason": "Expired", "code": 410,
                                               "message": "too old resource version"}}
            self.expired_served += 1
            return
        async for item in super()._serve_watch(request):
            yield item


OPTIONAL = {key for key in DECLARED if key.startswith(("cdi.kubevirt.io/", "snapshot.storage.k8s.io/", "kubevirt.io/",
                                                       "clone.kubevirt.io/", "snapshot.kubevirt.io/"))}


class KubeAPI:
    """Start with KubeAPI(); .host is the URL; stop_server()/start_server() simulate an outage.

    crds: None declares what DECLARED says (volumeclonesources absent); True installs every CDI and
    snapshot CRD; False none of them (their lists answer 404, as without the CRDs). declare: more
    "group/version/plural" keys (True: namespaced), None to leave one undeclared (an older KubeVirt)."""

    def __init__(self, crds: bool | None = None, declare: dict[str, bool | None] | None = None) -> None:
        self._crds = crds
        self._declare = declare or {}
        self._ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.emu: Emulator | None = None
        self.port: int = 0
        self._server = None
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)
        self._stop: asyncio.Event | None = None
        self._thread.start()
        self._ready.wait(10)
        self.api = k8s.ApiClient(self.configuration())
        self.core = k8s.CoreV1Api(self.api)
        self.storage = k8s.StorageV1Api(self.api)
        self.custom = k8s.CustomObjectsApi(self.api)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.emu = Emulator()
        declared = dict(DECLARED)
        if self._crds is True:
            declared["cdi.kubevirt.io/v1beta1/volumeclonesources"] = True
        elif self._crds is False:
            declared = {k: v for k, v in declared.items() if k not in OPTIONAL}
        declared.update(self._declare)
        declared = {k: v for k, v in declared.items() if v is not None}
        for key, namespaced in declared.items():
            self.emu.resources[key].namespaced = namespaced
        async with self.emu:
            await self._start_server()
            self._ready.set()
            await self._stop.wait()
            await self._stop_server()

    async def _start_server(self) -> None:
        server = kmock.Server(self.emu, port=self.port or None)
        await server.__aenter__()
        self._server = server
        self.port = server.port

    async def _stop_server(self) -> None:
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
            self._server = None

    def _call(self, coro) -> Any:
        fut: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(30)

    # -- outage -------------------------------------------------------------------------------
    def stop_server(self) -> None:
        self._call(self._stop_server())

    def start_server(self) -> None:
        self._call(self._start_server())

    def expire_next_watch(self, plural: str) -> None:
        self.emu.expire_watches.add(plural)

    def garbage_next_watch(self, plural: str) -> None:
        self.emu.garbage_watches.add(plural)

    def burst(self, resource: str, objects: list[dict]) -> None:
        self._call(self.emu.burst(resource, objects))

    def close(self) -> None:
        if self.loop and self._stop:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    # -- clients --------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configuration(self) -> k8s.Configuration:
        cfg = k8s.Configuration()
        cfg.host = self.host
        return cfg

    def write_kubeconfig(self, path: Path) -> Path:
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "kmock",
               "clusters": [{"name": "kmock", "cluster": {"server": self.host}}],
               "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
               "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "tester"}}]}
        path.write_text(yaml.safe_dump(doc))
        return path

    # -- objects, through the real client -----------------------------------------------------
    def create(self, obj: dict) -> None:
        kind, meta = obj["kind"], obj["metadata"]
        ns = meta.get("namespace")
        if kind == "PersistentVolumeClaim":
            r = self.core.create_namespaced_persistent_volume_claim(ns, obj, _preload_content=False)
        elif kind == "PersistentVolume":
            r = self.core.create_persistent_volume(obj, _preload_content=False)
        elif kind == "StorageClass":
            r = self.storage.create_storage_class(obj, _preload_content=False)
        else:
            group, version = obj["apiVersion"].split("/")
            plural = kind.lower() + "s"
            if ns:
                r = self.custom.create_namespaced_custom_object(group, version, ns, plural, obj,
                                                                _preload_content=False)
            else:
                r = self.custom.create_cluster_custom_object(group, version, plural, obj, _preload_content=False)
        assert r.status == 201, (r.status, r.data)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        if kind == "PersistentVolumeClaim":
            self.core.delete_namespaced_persistent_volume_claim(name, namespace, _preload_content=False)
        elif kind == "PersistentVolume":
            self.core.delete_persistent_volume(name, _preload_content=False)
        elif kind in PATHS:
            base = PATHS[kind].format(namespace=namespace)
            method, url, headers, body, post = self.api.param_serialize(
                method="DELETE", resource_path=f"{base}/{name}", header_params={"Accept": "application/json"})
            resp = self.api.call_api(method, url, header_params=headers, body=body, post_params=post)
            resp.read()
            assert resp.status == 200, resp.data
        else:
            raise ValueError(kind)

    def patch(self, kind: str, name: str, namespace: str | None, patch: dict) -> None:
        """A JSON merge patch of any kind PATHS knows (None deletes a key, as finalizers: None)."""
        base = PATHS[kind].format(namespace=namespace)
        method, url, headers, body, post = self.api.param_serialize(
            method="PATCH", resource_path=f"{base}/{name}", body=json.loads(json.dumps(patch)),
            header_params={"Content-Type": "application/merge-patch+json", "Accept": "application/json"})
        resp = self.api.call_api(method, url, header_params=headers, body=body, post_params=post)
        resp.read()
        assert resp.status == 200, resp.data

    def patch_pvc(self, namespace: str, name: str, patch: dict) -> None:
        self.core.patch_namespaced_persistent_volume_claim(name, namespace, patch, _preload_content=False)

    def raw_create(self, path: str, obj: dict) -> None:
        """POST any JSON (also malformed objects the typed client would refuse)."""
        method, url, headers, body, post = self.api.param_serialize(
            method="POST", resource_path=path, body=json.loads(json.dumps(obj)),
            header_params={"Content-Type": "application/json", "Accept": "application/json"})
        resp = self.api.call_api(method, url, header_params=headers, body=body, post_params=post)
        resp.read()
        assert resp.status == 201, resp.data
