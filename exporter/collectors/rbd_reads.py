"""How the RBD backend read each target's images: from their object maps through RADOS, through
librbd, or not at all because nothing changed (built fresh each scrape from the backend states)."""

from collections.abc import Iterable

from prometheus_client.core import Metric as Family
from prometheus_client.registry import Collector

from ..backends.rbd.state import RbdTargetState
from ..exposition.metric import COUNTER, Metric
from .base import States, scrape

READ = Metric("clonewatch_rbd_images_read", COUNTER,
              "RBD images read since start, per refresh of the target, by how: objectmap (header and object "
              "maps through RADOS, no image opened), librbd (opened: no object map, or one the fast path "
              "could not stand behind), unchanged (header and object map as at the last refresh: figures kept).",
              ("target", "method"))


class RbdReadsCollector(Collector):
    def __init__(self, states: States) -> None:
        self._states = states

    def collect(self) -> Iterable[Family]:
        family = READ.family()
        for _backend, st in self._states():
            if isinstance(st, RbdTargetState):
                for method, count in sorted(st.images_read.items()):
                    family.add_metric([st.target, method], count)
        return [family] if family.samples else []


SPEC = scrape("rbd_reads", 25, (READ,), lambda ctx: RbdReadsCollector(ctx.states))
