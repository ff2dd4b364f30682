"""A test double of an IBM Storage Virtualize / FlashSystem array's REST API.

No real array can run here, so this follows IBM's documented REST shapes exactly where we rely
on them:
- `POST /rest/v1/auth` with headers X-Auth-Username / X-Auth-Password -> `{"token": "..."}`;
  bad credentials -> 403. Commands: `POST /rest/v1/<command>[/<id>]` with header X-Auth-Token
  and the command's flags as a JSON body; an unknown or expired token -> 403.
- Every value is a string; with `{"bytes": true}` capacities are byte counts.
- `lsvdisk` (concise: one object per vdisk; `lsvdisk/<id>` detailed: a list of the vdisk object
  followed by one object per copy), `lssevdiskcopy` (thin/compressed copies; used_capacity is
  blank for copies in a data reduction pool), `lsfcmap` (field names as the CLI prints them).
- `mkvdisk`, `mkvolume` (what the IBM block CSI driver runs to make a volume: name, size, unit,
  pool), `mkfcmap`, `startfcmap` as the CSI driver uses them to clone, replying
  `{"id": "N", "message": "..."}`. The driver names what it makes `<prefix>_<request name>`
  (`CSI_pvc-<uuid>`, `CSI_snapshot-<uuid>` by default): `csi_name` gives such names, and
  `volume_like_csi` makes a volume the way its CreateVolume does.
- Background copy speed follows IBM's copy-rate table (1-10: 128 KiB/s, doubling every ten up
  to 141-150: 2 GiB/s) over the source's capacity; a clock the test advances drives progress.

It models thick, thin and data-reduction-pool copies: a thin FlashCopy target uses what its
hosts wrote plus the part of its source's data copied so far. Faults: wrong credentials, token
expiry, HTTP errors (500, 429), slow replies, garbage bodies.
"""

import asyncio
import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.support.https import HttpsServer

KiB = 1024


def copy_rate_bytes_per_second(rate: int) -> int:
    if rate <= 0:
        return 0
    return 128 * KiB * 2 ** ((min(rate, 150) - 1) // 10)


@dataclass
class VDisk:
    id: str
    name: str
    uid: str
    capacity: int
    pool: str = "thin"          # thick | thin | drp
    written: int = 0            # bytes hosts wrote into this vdisk itself


@dataclass
class FcMap:
    id: str
    name: str
    source: str
    target: str
    copy_rate: int
    autodelete: bool = False
    status: str = "idle_or_copied"
    copied: float = 0.0         # bytes of the source's capacity copied so far
    started: bool = False

    def progress(self, capacity: int) -> int:
        if not self.started:
            return 0
        return min(100, int(self.copied * 100 // capacity)) if capacity else 100


@dataclass
class Faults:
    errors: list[tuple[int, str]] = field(default_factory=list)     # next replies to commands
    delay: float = 0.0                                               # seconds before every reply
    garbage: int = 0                                                 # next N command replies are not JSON
    fields_missing: int = 0                                          # next N lsvdisk replies lack capacity


class FlashSystemDouble(HttpsServer):
    """Runs in its own thread; .address is what goes into management_address."""

    def __init__(self, tls_dir: Path, username: str = "clonewatch", password: str | None = None,
                 token_ttl: float = 3600.0) -> None:
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        self.token_ttl = token_ttl
        self.now = 0.0                          # the array's clock, advanced by the test
        self.vdisks: dict[str, VDisk] = {}
        self.fcmaps: dict[str, FcMap] = {}
        self.tokens: dict[str, float] = {}      # token -> issued at (array clock)
        self.faults = Faults()
        self.requests: list[str] = []           # commands served, in order
        self.auth_headers_seen: list[dict] = []
        self._next_ids: dict[str, int] = {}
        self.system = secrets.token_hex(3).upper()     # this array's part of its vdisk UIDs
        self._index: tuple[dict, dict] | None = None
        self._lock = threading.Lock()
        super().__init__("flashsystem", tls_dir, self._routes)     # last: it starts serving

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- model -------------------------------------------------------------------------------
    def _new_id(self, kind: str = "vdisk") -> str:
        # vdisks and mappings have ids of their own, as on the array
        n = self._next_ids.get(kind, 0)
        self._next_ids[kind] = n + 1
        return str(n)

    def _uid(self, vid: str) -> str:
        """A vdisk_UID: 32 hex digits, the system's own part in the middle, so two arrays' never meet."""
        return f"6005076810{self.system}{int(vid):016X}"

    def create_vdisk(self, name: str, capacity: int, pool: str = "thin") -> VDisk:
        with self._lock:
            vid = self._new_id()
            vd = VDisk(vid, name, self._uid(vid), capacity, pool)
            self.vdisks[vid] = vd
            return vd

    def write(self, name: str, nbytes: int) -> None:
        """Hosts write nbytes of new data into the vdisk (up to its capacity)."""
        with self._lock:
            vd = self._by_name(name)
            vd.written = min(vd.capacity, vd.written + nbytes)

    def advance(self, seconds: float) -> None:
        """Let the array's clock run: background copies progress at their copy rate."""
        with self._lock:
            self.now += seconds
            for m in list(self.fcmaps.values()):
                if m.status != "copying":
                    continue
                cap = self.vdisks[m.source].capacity
                m.copied = min(cap, m.copied + copy_rate_bytes_per_second(m.copy_rate) * seconds)
                if m.copy_rate > 0 and m.copied >= cap:
                    m.status = "idle_or_copied"
                    if m.autodelete:        # the target now holds all of it on its own
                        tgt = self.vdisks[m.target]
                        tgt.written = min(tgt.capacity, tgt.written + self.data_bytes(m.source))
                        del self.fcmaps[m.id]

    def _by_name(self, name: str) -> VDisk:
        for vd in self.vdisks.values():
            if vd.name == name or vd.id == name:
                return vd
        raise KeyError(name)

    def _feeding(self, vid: str) -> FcMap | None:
        if self._index is not None:
            return self._index[1].get(vid)
        for m in self.fcmaps.values():
            if m.target == vid and m.started:
                return m
        return None

    def _maps_of(self, vid: str) -> list[FcMap]:
        if self._index is not None:
            return self._index[0].get(vid, [])
        return [m for m in self.fcmaps.values() if vid in (m.source, m.target)]

    def data_bytes(self, vid: str) -> int:
        """The data a host reads from the vdisk: its own writes over what it gets from a source."""
        vd = self.vdisks[vid]
        m = self._feeding(vid)
        inherited = self.data_bytes(m.source) if m else 0
        return min(vd.capacity, max(vd.written, inherited))

    def used_bytes(self, vid: str) -> int:
        vd = self.vdisks[vid]
        if vd.pool == "thick":
            return vd.capacity
        m = self._feeding(vid)
        copied = 0
        if m is not None:
            copied = int(self.data_bytes(m.source) * m.progress(self.vdisks[m.source].capacity) / 100)
        return min(vd.capacity, vd.written + copied)

    # -- REST replies (strings everywhere, as the array sends them) ----------------------------
    def _vdisk_row(self, vd: VDisk) -> dict:
        maps = self._maps_of(vd.id)
        return {"id": vd.id, "name": vd.name, "IO_group_id": "0", "IO_group_name": "io_grp0",
                "status": "online", "mdisk_grp_id": "0", "mdisk_grp_name": f"pool_{vd.pool}",
                "capacity": str(vd.capacity), "type": "striped",
                "FC_id": maps[0].id if len(maps) == 1 else ("many" if maps else ""),
                "FC_name": maps[0].name if len(maps) == 1 else ("many" if maps else ""),
                "RC_id": "", "RC_name": "", "vdisk_UID": vd.uid, "fc_map_count": str(len(maps)),
                "copy_count": "1", "fast_write_state": "empty",
                "se_copy_count": "0" if vd.pool == "thick" else "1", "RC_change": "no",
                "compressed_copy_count": "0", "parent_mdisk_grp_id": "0",
                "parent_mdisk_grp_name": f"pool_{vd.pool}", "formatting": "no", "encrypt": "no",
                "volume_id": vd.id, "volume_name": vd.name, "function": "", "protocol": "scsi"}

    def _copy_row(self, vd: VDisk) -> dict:
        used = self.used_bytes(vd.id)
        drp = vd.pool == "drp"
        return {"copy_id": "0", "status": "online", "sync": "yes", "primary": "yes",
                "mdisk_grp_id": "0", "mdisk_grp_name": f"pool_{vd.pool}", "type": "striped",
                "used_capacity": "" if drp else str(used),
                "real_capacity": "" if drp else str(vd.capacity if vd.pool == "thick" else used),
                "free_capacity": "" if drp else str(0 if vd.pool == "thick" else vd.capacity - used),
                "overallocation": "100", "autoexpand": "" if vd.pool == "thick" else "on",
                "se_copy": "no" if vd.pool == "thick" else "yes", "compressed_copy": "no",
                "deduplicated_copy": "no", "uncompressed_used_capacity": str(used),
                "used_capacity_before_reduction": str(used) if drp else ""}

    def _sev_row(self, vd: VDisk) -> dict:
        row = self._copy_row(vd)
        return {"vdisk_id": vd.id, "vdisk_name": vd.name, "copy_id": "0", "mdisk_grp_id": "0",
                "mdisk_grp_name": row["mdisk_grp_name"], "capacity": str(vd.capacity),
                "used_capacity": row["used_capacity"], "real_capacity": row["real_capacity"],
                "free_capacity": row["free_capacity"], "overallocation": "100", "autoexpand": "on",
                "warning": "80", "grainsize": "256", "se_copy": "yes", "compressed_copy": "no",
                "uncompressed_used_capacity": row["uncompressed_used_capacity"]}

    def _fcmap_row(self, m: FcMap) -> dict:
        src, tgt = self.vdisks[m.source], self.vdisks[m.target]
        return {"id": m.id, "name": m.name, "source_vdisk_id": src.id, "source_vdisk_name": src.name,
                "target_vdisk_id": tgt.id, "target_vdisk_name": tgt.name, "group_id": "", "group_name": "",
                "status": m.status, "progress": str(m.progress(src.capacity)), "copy_rate": str(m.copy_rate),
                "clean_progress": "100", "incremental": "off", "partner_FC_id": "", "partner_FC_name": "",
                "restoring": "no", "start_time": "", "rc_controlled": "no"}

    def run(self, command: str, object_id: str, body: dict) -> tuple[int, object]:
        with self._lock:
            if object_id or command not in ("lsvdisk", "lssevdiskcopy"):
                return self._run(command, object_id, body)
            # A listing: index the mappings once, so a big array answers in linear time.
            maps_of: dict[str, list[FcMap]] = {}
            for m in self.fcmaps.values():
                maps_of.setdefault(m.source, []).append(m)
                maps_of.setdefault(m.target, []).append(m)
            self._index = (maps_of, {m.target: m for m in self.fcmaps.values() if m.started})
            try:
                return self._run(command, object_id, body)
            finally:
                self._index = None

    def _run(self, command: str, object_id: str, body: dict) -> tuple[int, object]:
        if command == "lsvdisk" and object_id:
            vd = self.vdisks.get(object_id)
            if vd is None:
                return 500, "CMMVC5753E The specified object does not exist or is not a suitable candidate."
            return 200, [self._vdisk_row(vd), self._copy_row(vd)]
        if command == "lsvdisk":
            rows = [self._vdisk_row(vd) for vd in self.vdisks.values()]
            if self.faults.fields_missing:
                self.faults.fields_missing -= 1
                for r in rows:
                    r.pop("capacity")
            return 200, rows
        if command == "lssevdiskcopy":
            return 200, [self._sev_row(vd) for vd in self.vdisks.values() if vd.pool != "thick"]
        if command == "lsfcmap":
            return 200, [self._fcmap_row(m) for m in self.fcmaps.values()]
        if command == "mkvdisk":
            vid = self._new_id()
            unit = {"b": 1, "kb": KiB, "mb": KiB**2, "gb": KiB**3}[body.get("unit", "mb")]
            pool = str(body.get("mdiskgrp", "pool_thin")).removeprefix("pool_")
            self.vdisks[vid] = VDisk(vid, body["name"], self._uid(vid),
                                     int(body["size"]) * unit, pool)
            return 200, {"id": vid, "message": f"Virtual Disk, id [{vid}], successfully created"}
        if command == "mkvolume":
            vid = self._new_id()
            unit = {"b": 1, "kb": KiB, "mb": KiB**2, "gb": KiB**3}[body.get("unit", "mb")]
            pool = str(body.get("pool", "pool_thin")).removeprefix("pool_")
            self.vdisks[vid] = VDisk(vid, body["name"], self._uid(vid),
                                     int(body["size"]) * unit, pool)
            return 200, {"id": vid, "message": f"Volume, id [{vid}], successfully created"}
        if command == "mkfcmap":
            src, tgt = self._by_name(body["source"]), self._by_name(body["target"])
            if src.capacity != tgt.capacity:
                return 500, ("CMMVC5924E The FlashCopy mapping was not created because the source and target "
                             "virtual disks (VDisks) are different sizes.")
            mid = self._new_id("fcmap")
            self.fcmaps[mid] = FcMap(mid, body.get("name", f"fcmap{mid}"), src.id, tgt.id,
                                     int(body.get("copyrate", 50)), bool(body.get("autodelete")))
            return 200, {"id": mid, "message": f"FlashCopy Mapping, id [{mid}], successfully created"}
        if command == "startfcmap":
            m = self.fcmaps.get(object_id) or next(m for m in self.fcmaps.values() if m.name == object_id)
            m.status, m.started = "copying", True
            return 200, ""
        return 500, f"CMMVC5707E Required parameters are missing. ({command})"

    # -- HTTP --------------------------------------------------------------------------------
    async def _auth(self, request: web.Request) -> web.Response:
        await self._slow()
        self.auth_headers_seen.append(dict(request.headers))
        if (request.headers.get("X-Auth-Username") != self.username
                or request.headers.get("X-Auth-Password") != self.password):
            return web.Response(status=403, text="Authentication failed")
        token = secrets.token_hex(16)
        with self._lock:
            self.tokens[token] = self.now
        return web.json_response({"token": token})

    async def _command(self, request: web.Request) -> web.Response:
        await self._slow()
        command, object_id = request.match_info["command"], request.match_info.get("id", "")
        token = request.headers.get("X-Auth-Token", "")
        with self._lock:
            issued = self.tokens.get(token)
            if issued is None or self.now - issued >= self.token_ttl:
                self.tokens.pop(token, None)
                return web.Response(status=403, text="Forbidden: the token is invalid or has expired")
            self.requests.append(command)
            if self.faults.errors:
                status, text = self.faults.errors.pop(0)
                return web.Response(status=status, text=text)
            if self.faults.garbage:
                self.faults.garbage -= 1
                return web.Response(status=200, text="<html>proxy error</html>")
        body = await request.json() if request.can_read_body else {}
        status, reply = self.run(command, object_id, body or {})
        if status != 200:
            return web.Response(status=status, text=str(reply))
        return web.Response(status=200, text=json.dumps(reply), content_type="application/json")

    async def _slow(self) -> None:
        if self.faults.delay:
            await asyncio.sleep(self.faults.delay)

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/rest/v1/auth", self._auth)
        app.router.add_post("/rest/v1/{command}", self._command)
        app.router.add_post("/rest/v1/{command}/{id}", self._command)


    # -- wiring for the exporter --------------------------------------------------------------
    def write_secret_dir(self, directory: Path, with_ca: bool = True, password: str | None = None) -> Path:
        """The directory layout a mounted IBM block CSI array Secret gives (plus ca.crt)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "management_address").write_text(self.address)
        (directory / "username").write_text(self.username)
        (directory / "password").write_text(password if password is not None else self.password)
        if with_ca:
            (directory / "ca.crt").write_bytes(self.cert.read_bytes())
        return directory

    def clone_like_csi(self, source: str, name: str, copy_rate: int = 50) -> VDisk:
        """What the IBM block CSI driver does for a PVC clone: a same-size vdisk in the same kind
        of pool, a FlashCopy mapping at the given rate, started."""
        src = self._by_name(source)
        status, reply = self.run("mkvdisk", "", {"name": name, "size": str(src.capacity), "unit": "b",
                                                 "mdiskgrp": f"pool_{src.pool}"})
        assert status == 200, reply
        status, m = self.run("mkfcmap", "", {"source": src.name, "target": name, "copyrate": copy_rate,
                                             "name": f"fcmap_{name}"})
        assert status == 200, m
        self.run("startfcmap", m["id"], {"prep": True})
        return self._by_name(name)

    @staticmethod
    def csi_name(kind: str = "pvc", prefix: str = "CSI") -> str:
        """A name as the IBM block CSI driver gives what it makes: its prefix, "_", the request name
        (the external provisioner's pvc-<uid>, the snapshotter's snapshot-<uid>)."""
        return f"{prefix}_{kind}-{uuid.uuid4()}"

    def volume_like_csi(self, name: str, capacity: int, pool: str = "thin") -> VDisk:
        """What the driver's CreateVolume runs for an empty volume: `mkvolume` in bytes."""
        status, reply = self.run("mkvolume", "", {"name": name, "size": str(capacity), "unit": "b",
                                                  "pool": f"pool_{pool}"})
        assert status == 200, reply
        return self._by_name(name)

    def snapshot_like_csi(self, source: str, name: str) -> VDisk:
        """A CSI snapshot: a thin target and a mapping with copy rate 0 (copy-on-write only)."""
        return self.clone_like_csi(source, name, copy_rate=0)

    def handle(self, vd: VDisk) -> str:
        return f"SVC:{vd.id};{vd.uid}"
