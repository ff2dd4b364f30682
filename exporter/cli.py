"""clonewatch-exporter command line: options, validation (exit 2 naming the key), run."""

import asyncio
import sys
from typing import Sequence

import structlog

from . import __version__
from .logging import FORMATS, LEVELS, configure
from .settings import ConfigError, Option, Settings, parse

OPTIONS = (
    Option("web.listen-address", "str", ":9753", "address to serve /metrics, /healthz, /readyz on"),
    Option("log.level", "str", "info", "one of " + ", ".join(LEVELS)),
    Option("log.format", "str", "json", "one of " + ", ".join(FORMATS)),
    Option("kubernetes.enabled", "bool", True,
           "watch Kubernetes; false = native mode, backend volumes and their parent chains only"),
    Option("kubeconfig", "str", "", "kubeconfig file (else $KUBECONFIG or ~/.kube/config, else in-cluster)"),
    Option("kubernetes.context", "str", "", "kubeconfig context to use"),
    Option("kubernetes.namespaces", "list", (), "only watch these namespaces (comma-separated; default all)"),
    Option("kubernetes.watch-timeout", "int", 300, "seconds a watch request asks the API server to stay open"),
    Option("kubernetes.read-timeout", "float", 330.0, "seconds without a byte before a watch is reopened"),
    Option("kubernetes.backoff-max", "float", 30.0, "longest wait between retries after API errors"),
    Option("kubernetes.absent-recheck", "float", 300.0, "seconds between looks for a CRD that is not installed"),
    Option("rbd.enabled", "bool", True, "measure Ceph RBD images"),
    Option("rbd.pools", "list", (), "pools (or pool/namespace) to measure even without PVs in them"),
    Option("rbd.binary", "str", "rbd", "the rbd command"),
    Option("rbd.timeout", "float", 60.0, "seconds before a hanging rbd command is killed"),
    Option("rbd.refresh-interval", "float", 60.0, "seconds between RBD refreshes"),
    Option("rbd.concurrency", "int", 4, "targets refreshed at once"),
    Option("ceph.conf", "str", "", "ceph.conf for rbd (else $CEPH_CONF / rbd's default)"),
    Option("ceph.id", "str", "", "Ceph client id, e.g. admin (as the Rook toolbox uses)"),
    Option("ceph.keyring", "str", "", "keyring file for that client"),
    Option("ceph.mon-host", "str", "", "monitor addresses, when there is no ceph.conf (as Rook's toolbox env gives)"),
    Option("vpc.enabled", "bool", True,
           "IBM Cloud VPC block/file PVs: full copies by design, consumed = provisioned capacity"),
    Option("qcow2.dirs", "list", (), "directories of qcow2 images to measure (linked clones via backing files)"),
    Option("qcow2.refresh-interval", "float", 30.0, "seconds between scans of those directories"),
    Option("rebuild.debounce", "float", 0.2, "seconds to gather changes before the metrics are re-rendered"),
)


def parse_listen_address(value: str) -> tuple[str | None, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("web.listen-address", f"expected [host]:port, got {value!r}")
    host = host.strip("[]")
    return (host or None), int(port)


def load(argv: Sequence[str] | None = None) -> Settings:
    settings = parse(argv, OPTIONS, "clonewatch-exporter",
                     "Prometheus exporter: are your clones really copy-on-write?")
    if settings.log_level not in LEVELS:
        raise ConfigError("log.level", f"expected one of {', '.join(LEVELS)}, got {settings.log_level!r}")
    if settings.log_format not in FORMATS:
        raise ConfigError("log.format", f"expected one of {', '.join(FORMATS)}, got {settings.log_format!r}")
    parse_listen_address(settings.web_listen_address)
    for key in ("rbd.timeout", "rbd.refresh-interval", "kubernetes.read-timeout", "qcow2.refresh-interval"):
        if getattr(settings, key.replace(".", "_").replace("-", "_")) <= 0:
            raise ConfigError(key, "must be greater than 0")
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load(argv)
    except ConfigError as exc:
        print(f"clonewatch-exporter: configuration error: {exc}", file=sys.stderr)
        return 2
    configure(settings.log_level, settings.log_format)
    from .server import run   # after logging is configured
    log = structlog.get_logger("clonewatch")
    log.info("starting", version=__version__, **{k: v for k, v in settings.as_dict().items()
                                                    if k not in ("ceph_keyring",)})
    try:
        return asyncio.run(run(settings))
    except ConfigError as exc:
        print(f"clonewatch-exporter: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
