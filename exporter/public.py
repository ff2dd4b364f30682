"""What the companion daemon (loadgen) may use of the exporter, and nothing more.

loadgen measures its clones with the exporter's own parsers and arithmetic, so both agree to the
byte; an import-linter contract (pyproject.toml) keeps it to this module.
"""

from .backends.base import Volume
from .backends.qcow2 import scan_dir
from .backends.rbd.cli import build_volumes as rbd_volumes
from .backends.rbd.cli import parse_du as parse_rbd_du
from .backends.rbd.cli import parse_ls as parse_rbd_ls
from .backends.rbd.naming import volume_id as rbd_volume_id
from .config.logs import configure as configure_logging
from .config.settings import ConfigError, HintingParser, parse_listen_address
from .http.metrics import WebCollector
from .http.serve import Security, security
from .http.serve import application as web_application
from .http.serve import serve as serve_app
from .kube.client import load_api_client, request_json
from .kube.quantity import parse_bytes
from .model.efficiency import family_numbers, logical_bytes
from .summary.tables import fetch as fetch_metrics
from .summary.tables import human

__all__ = [
           "ConfigError",
           "HintingParser",
           "Security",
           "Volume",
           "WebCollector",
           "configure_logging",
           "family_numbers",
           "fetch_metrics",
           "human",
           "load_api_client",
           "logical_bytes",
           "parse_bytes",
           "parse_listen_address",
           "parse_rbd_du",
           "parse_rbd_ls",
           "rbd_volume_id",
           "rbd_volumes",
           "request_json",
           "scan_dir",
           "security",
           "serve_app",
           "web_application",
]
