"""One module per dashboard, each defining BOARD; BOARDS in the order the files and ConfigMaps list them."""

from . import backends, clusters, family, fleet, loadgen

BOARDS = (fleet.BOARD, family.BOARD, backends.BOARD, loadgen.BOARD, clusters.BOARD)
