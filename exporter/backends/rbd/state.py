"""What the RBD backend keeps per target beyond every backend's TargetState: how its images were
read since the start (pool_read.METHODS), for `clonewatch_rbd_images_read_total`."""

from dataclasses import dataclass, field

from ..base import TargetState


@dataclass
class RbdTargetState(TargetState):
    # method -> images read that way since start; replaced after each refresh, never edited in place
    # (the rebuild copies states shallowly while a scrape may read the last copy)
    images_read: dict[str, int] = field(default_factory=dict)
