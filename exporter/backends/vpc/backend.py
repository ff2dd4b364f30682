"""IBM Cloud VPC block and file storage (`vpc.block.csi.ibm.io`, `vpc.file.csi.ibm.io`).

The VPC CSI drivers cannot clone: a "clone" is a restore from a VolumeSnapshot, a new volume
that holds a full, independent copy and is billed for its whole provisioned capacity. So each
volume consumes its provisioned capacity and has no parent; families of such clones come out
at efficiency 0, which is the point.

With the VPC API configured, each volume is also looked up there (`source_snapshot` confirms the
restore relationship and becomes the volume's origin); a volume the API does not know is left
out, and an API that cannot be reached takes the targets down. Bytes stay the PV's capacity:
that is what the driver provisioned and what is billed.

Volumes no PV maps to (space no PVC owns) are looked for only when `vpc.csi-tags` names the user
tags this cluster's block driver puts on its volumes: the driver sets no tag of its own, only what
its `--extra-labels`, a StorageClass's `tags` or its Secret give. Each refresh then lists the
region's volumes; one carrying all those tags and no PV is reported with its capacity (GB, which
the driver counts as GiB) and `created_at`, made_by "csi" only when it is also named as the driver
names volumes (the provisioner's `pvc-<uuid>`), else with nothing said of who made it. File
shares (`vpc.file.csi.ibm.io`) and VPC snapshots are not listed.
"""

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ...config.settings import ConfigError, option
from ...kube.objects import get, text
from ...kube.quantity import parse_bytes
from ..base import BackendSpec, Core, TargetState, Volume, VolumeRef, record
from .api import VpcApiAccess, VpcApiClient

NAME = "vpc"
RECHECK_SECONDS = 3600.0
DRIVERS = {"vpc.block.csi.ibm.io": "vpc-block", "vpc.file.csi.ibm.io": "vpc-file"}
BLOCK = "vpc-block"
GiB = 2**30
# The driver names a volume after its CSI request: the external provisioner's pvc-<PVC uid>.
_REQUEST = re.compile(r"pvc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def created_at(value: Any) -> float:
    """Unix seconds of the API's RFC 3339 `created_at`; 0 when it is missing or not a date with a zone."""
    if not isinstance(value, str):
        return 0.0
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return 0.0
    return when.timestamp() if when.tzinfo is not None else 0.0


def unclaimed_volume(doc: dict[str, Any], tags: frozenset[str]) -> Volume | None:
    """A listed volume carrying every one of our tags, as a Volume; None when it does not carry
    them or its id or capacity is missing or not what the API documents (absent, not invented)."""
    vid, capacity, user_tags = doc.get("id"), doc.get("capacity"), doc.get("user_tags")
    if not isinstance(vid, str) or not vid or not isinstance(user_tags, list):
        return None
    if not tags <= {t.strip().lower() for t in user_tags if isinstance(t, str)}:
        return None
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity <= 0:
        return None
    ours = isinstance(doc.get("name"), str) and _REQUEST.fullmatch(doc["name"]) is not None
    return Volume(volume=vid, target=BLOCK, consumed_bytes=capacity * GiB, provisioned_bytes=capacity * GiB,
                  origin=text(get(doc, "source_snapshot", "id")), made_by="csi" if ours else "",
                  csi_kind="volume" if ours else "", created=created_at(doc.get("created_at")))


class VpcBackend:
    name = NAME
    unshared_reason = "independent-copy"     # every VPC volume is a full copy

    def __init__(self, api: VpcApiClient | None = None, refresh_interval: float | None = None,
                 csi_tags: tuple[str, ...] = ()) -> None:
        self.api = api
        # The user tags that mark our driver's volumes (compared as the API does, ignoring case);
        # empty: volumes without a PV are not looked for.
        self.csi_tags = frozenset(t.strip().lower() for t in csi_tags if t.strip())
        # Without the API nothing is fetched: only what the PVs say, so refresh often.
        self.refresh_interval = refresh_interval or (300.0 if api else 10.0)
        self._states: dict[str, TargetState] = {}
        self._capacity: dict[tuple[str, str], int] = {}
        # What the API said per volume (origin, or None: unknown there) and when: a volume's
        # source snapshot never changes, so a known one is asked again only after RECHECK_SECONDS;
        # one the API did not know is asked again every refresh.
        self._looked_up: dict[str, tuple[str | None, float]] = {}

    def map_pv(self, pv: dict[str, Any]) -> VolumeRef | None:
        target = DRIVERS.get(text(get(pv, "spec", "csi", "driver")))
        handle = text(get(pv, "spec", "csi", "volumeHandle"))
        if not target or not handle:
            return None
        return VolumeRef(NAME, target, handle)

    def serves_provisioner(self, provisioner: str) -> bool:
        return provisioner in DRIVERS

    def map_snapshot_content(self, content: dict[str, Any]) -> VolumeRef | None:
        return None

    def want(self, pvs: Iterable[dict[str, Any]]) -> None:
        capacity = {}
        for pv in pvs:
            ref = self.map_pv(pv)
            size = parse_bytes(get(pv, "spec", "capacity", "storage"))
            if ref is not None and size is not None:
                capacity[(ref.target, ref.volume)] = size
        self._capacity = capacity
        volumes = {volume for _, volume in capacity}
        self._looked_up = {v: seen for v, seen in self._looked_up.items() if v in volumes}   # PVs gone

    def states(self) -> dict[str, TargetState]:
        return self._states

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()

    async def refresh(self) -> None:
        by_target: dict[str, dict[str, int]] = {t: {} for t in DRIVERS.values()}
        for (target, volume), size in self._capacity.items():
            by_target[target][volume] = size
        for target, sizes in by_target.items():
            if sizes or target in self._states or (target == BLOCK and self._lists()):
                await record(NAME, self._states.setdefault(target, TargetState(target)),
                             self._measure(target, sizes))

    async def _measure(self, target: str, sizes: dict[str, int]) -> dict[str, Volume]:
        origins: dict[str, str | None] = {v: "" for v in sizes}
        if self.api is not None:
            now = time.monotonic()
            due = [v for v in sizes if v not in self._looked_up or self._looked_up[v][0] is None
                   or now - self._looked_up[v][1] >= RECHECK_SECONDS]
            if not due and sizes:
                # Still ask about one (the longest unasked) each refresh: an API that went away shows.
                due = [min(sizes, key=lambda v: self._looked_up[v][1])]
            found = await asyncio.gather(*(self.api.volume(v) for v in due), return_exceptions=True)
            for volume, doc in zip(due, found, strict=True):
                if isinstance(doc, BaseException):
                    raise doc           # one failure fails the target: no partial, silently thinner list
                self._looked_up[volume] = (None if doc is None else text(get(doc, "source_snapshot", "id")), now)
            origins = {v: self._looked_up[v][0] for v in sizes}
        volumes = {v: Volume(volume=v, target=target, consumed_bytes=size, provisioned_bytes=size,
                             origin=origins[v] or "")
                   for v, size in sizes.items() if origins[v] is not None}
        if target == BLOCK and self.api is not None and self._lists():
            # A failed listing fails the target: no unclaimed volumes rather than a thinner list.
            for doc in await self.api.volumes():
                vol = unclaimed_volume(doc, self.csi_tags)
                if vol is not None and vol.volume not in sizes:
                    volumes[vol.volume] = vol
        return volumes

    def _lists(self) -> bool:
        return self.api is not None and bool(self.csi_tags)


# -- registration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class VpcOptions:
    enabled: bool = option("vpc.enabled", True,
                           "IBM Cloud VPC block/file PVs: full copies by design, consumed = provisioned capacity")
    api_url: str = option("vpc.api-url", "", "IBM Cloud VPC regional API endpoint (e.g. "
                          "https://us-south.iaas.cloud.ibm.com) to confirm each VPC volume and the snapshot it was "
                          "restored from; empty = PVs only")
    api_key_file: str = option("vpc.api-key-file", "", "file holding the IBM Cloud API key for the VPC API "
                               "(a mounted Secret)")
    iam_url: str = option("vpc.iam-url", "https://iam.cloud.ibm.com",
                          "IBM Cloud IAM endpoint that turns the API key into tokens")
    ca_file: str = option("vpc.ca-file", "", "CA bundle for the VPC and IAM endpoints (default: the system's)")
    timeout: float = option("vpc.timeout", 30.0, "seconds before a VPC API request is given up",
                            positive=True, unit="seconds")
    refresh_interval: float = option("vpc.refresh-interval", 300.0, "seconds between VPC API lookups "
                                     "(with --vpc.api-url)", positive=True, unit="seconds")
    csi_tags: tuple[str, ...] = option("vpc.csi-tags", (), "user tags every volume this cluster's VPC block CSI "
                                       "driver makes carries (its --extra-labels, or tags all of this cluster's "
                                       "StorageClasses give), e.g. clusterid:abc: with --vpc.api-url, volumes carrying "
                                       "them all that no PV maps to are reported; empty: none are looked for")


def _check(o: VpcOptions) -> None:
    if o.api_url and not o.api_key_file:
        raise ConfigError("vpc.api-key-file", "is needed with vpc.api-url")
    if o.csi_tags and not o.api_url:
        raise ConfigError("vpc.csi-tags", "needs vpc.api-url: only the VPC API lists volumes without a PV")
    if o.api_url and not o.api_url.startswith("https://"):
        raise ConfigError("vpc.api-url", f"expected an https:// URL, got {o.api_url!r}")


def _build(o: VpcOptions, core: Core) -> VpcBackend | None:
    if not (core.kubernetes and o.enabled):
        return None         # VPC volumes are known only from their PVs
    if not o.api_url:
        return VpcBackend()
    api = VpcApiClient(VpcApiAccess(url=o.api_url, api_key_file=Path(o.api_key_file), iam_url=o.iam_url,
                                    ca_file=Path(o.ca_file) if o.ca_file else None),
                       timeout_seconds=o.timeout)
    return VpcBackend(api, o.refresh_interval, o.csi_tags)


SPEC = BackendSpec(NAME, 30, VpcOptions, _build, _check)
