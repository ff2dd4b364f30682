"""A test double of IBM Cloud IAM and the VPC API's volumes endpoint, over HTTPS, in its own thread.

Shapes as IBM documents them (and as the `ibm-vpc` SDK's models read them):
- `POST /identity/token`, form `grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=...` ->
  `{"access_token", "refresh_token", "token_type": "Bearer", "expires_in", "expiration", "scope"}`;
  an unknown key -> 400 `{"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."}`.
- `GET /v1/volumes/{id}?version=YYYY-MM-DD&generation=2` with `Authorization: Bearer ...` ->
  the volume: id, crn, href, name, capacity (GB), iops, profile {name, href}, status, zone {name},
  resource_type "volume", created_at, and `source_snapshot` {crn, href, id, name, resource_type}
  when restored from a snapshot, and `user_tags` (what the VPC block CSI driver puts there: its
  `--extra-labels`, a StorageClass's or its Secret's `tags`).
- `GET /v1/volumes?version=...&generation=2[&limit=N][&start=T]` -> a page of the region's
  volumes, in the shapes above: `{"first": {"href"}, "limit", "volumes": [...]}` plus `"next":
  {"href": ".../v1/volumes?start=T&limit=N"}` while more follow (limit 1-100, 50 by default; an
  unknown start token -> 400 `bad_field`), as the VPC API (and the driver's own client) pages.
- Errors: `{"errors": [{"code", "message", "more_info"}], "trace",
  "status_code"}` (404 not_found, 401 for a missing/expired token, 400 for a missing version).
"""

import asyncio
import secrets
import time
import uuid
from pathlib import Path

from aiohttp import web

from tests.support.https import HttpsServer

REGION = "us-south"


def volume_id() -> str:
    return f"r006-{uuid.uuid4()}"


class VpcApiDouble(HttpsServer):
    def __init__(self, tls_dir: Path, token_ttl: float = 3600.0) -> None:
        self.api_key = secrets.token_urlsafe(24)
        self.token_ttl = token_ttl
        self.volumes: dict[str, dict] = {}
        self.tokens: dict[str, float] = {}       # token -> expires at (time.time())
        self.token_grants = 0
        self.volume_gets = 0
        self.list_gets = 0                       # pages of GET /v1/volumes served
        self.fail_next: list[int] = []           # statuses for the next volume GETs
        self.delay = 0.0
        super().__init__("vpc-api", tls_dir, self._routes)     # last: it starts serving

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def add_volume(self, name: str, capacity_gb: int, source_snapshot: str | None = None,
                   user_tags: list[str] | None = None, created_at: str = "2026-11-25T10:00:00Z") -> str:
        vid = volume_id()
        vol = {"id": vid, "crn": f"crn:v1:bluemix:public:is:{REGION}-1:a/123::volume:{vid}",
               "href": f"{self.url}/v1/volumes/{vid}", "name": name, "capacity": capacity_gb, "iops": 3000,
               "bandwidth": 393, "encryption": "provider_managed", "status": "available",
               "profile": {"name": "general-purpose", "href": f"{self.url}/v1/volume/profiles/general-purpose"},
               "zone": {"name": f"{REGION}-1", "href": f"{self.url}/v1/regions/{REGION}/zones/{REGION}-1"},
               "resource_type": "volume", "created_at": created_at, "attachment_state": "attached",
               "user_tags": list(user_tags or [])}
        if source_snapshot:
            vol["source_snapshot"] = {"crn": f"crn:v1:bluemix:public:is:{REGION}:a/123::snapshot:{source_snapshot}",
                                      "href": f"{self.url}/v1/snapshots/{source_snapshot}", "id": source_snapshot,
                                      "name": f"snap-{source_snapshot[-6:]}", "resource_type": "snapshot"}
        self.volumes[vid] = vol
        return vid

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        return web.json_response({"errors": [{"code": code, "message": message,
                                              "more_info": "https://cloud.ibm.com/docs/vpc?topic=vpc-rias-error-messages"}],
                                  "trace": str(uuid.uuid4()), "status_code": status}, status=status)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ibm:params:oauth:grant-type:apikey" or form.get("apikey") != self.api_key:
            return web.json_response({"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.",
                                      "context": {"requestId": str(uuid.uuid4())}}, status=400)
        token = secrets.token_hex(32)
        now = int(time.time())
        self.tokens[token] = now + self.token_ttl
        self.token_grants += 1
        return web.json_response({"access_token": token, "refresh_token": "not_supported", "token_type": "Bearer",
                                  "expires_in": int(self.token_ttl), "expiration": int(now + self.token_ttl),
                                  "scope": "ibm openid"})

    async def _refused(self, request: web.Request) -> web.Response | None:
        """What every GET checks first: the token, the version, an injected failure."""
        if self.delay:
            await asyncio.sleep(self.delay)
        auth = request.headers.get("Authorization", "")
        expires = self.tokens.get(auth.removeprefix("Bearer "))
        if not auth.startswith("Bearer ") or expires is None or time.time() >= expires:
            return self._error(401, "not_authorized", "The request is not authorized: the token is missing or expired.")
        if not request.query.get("version") or request.query.get("generation") != "2":
            return self._error(400, "missing_version", "The version query parameter is required.")
        if self.fail_next:
            status = self.fail_next.pop(0)
            return self._error(status, "internal_error", "Internal error, please retry.")
        return None

    async def _list(self, request: web.Request) -> web.Response:
        self.list_gets += 1
        refused = await self._refused(request)
        if refused is not None:
            return refused
        try:
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return self._error(400, "bad_field", "The limit must be between 1 and 100.")
        ids = list(self.volumes)
        start = request.query.get("start")
        if start is not None and start not in ids:
            return self._error(400, "bad_field", "The start parameter is not valid.")
        at = ids.index(start) if start is not None else 0
        page = {"first": {"href": f"{self.url}/v1/volumes?limit={limit}"}, "limit": limit,
                "volumes": [self.volumes[v] for v in ids[at:at + limit]]}
        if at + limit < len(ids):
            page["next"] = {"href": f"{self.url}/v1/volumes?start={ids[at + limit]}&limit={limit}"}
        return web.json_response(page)

    async def _volume(self, request: web.Request) -> web.Response:
        self.volume_gets += 1
        refused = await self._refused(request)
        if refused is not None:
            return refused
        vol = self.volumes.get(request.match_info["id"])
        if vol is None:
            return self._error(404, "not_found", "Volume not found.")
        return web.json_response(vol)

    def expire_tokens(self) -> None:
        for t in self.tokens:
            self.tokens[t] = 0

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/identity/token", self._token)
        app.router.add_get("/v1/volumes", self._list)
        app.router.add_get("/v1/volumes/{id}", self._volume)

