"""clonewatch-exporter command line: options, validation (exit 2 naming the key), run."""

import asyncio
import sys
from pathlib import Path
from typing import Sequence

import structlog

from . import __version__
from .backends.flashsystem import load_array
from .backends.vmware import load_vcenter
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
    Option("vpc.api-url", "str", "",
           "IBM Cloud VPC regional API endpoint (e.g. https://us-south.iaas.cloud.ibm.com) to confirm each "
           "VPC volume and the snapshot it was restored from; empty = PVs only"),
    Option("vpc.api-key-file", "str", "", "file holding the IBM Cloud API key for the VPC API (a mounted Secret)"),
    Option("vpc.iam-url", "str", "https://iam.cloud.ibm.com", "IBM Cloud IAM endpoint that turns the API key into tokens"),
    Option("vpc.ca-file", "str", "", "CA bundle for the VPC and IAM endpoints (default: the system's)"),
    Option("vpc.timeout", "float", 30.0, "seconds before a VPC API request is given up"),
    Option("vpc.refresh-interval", "float", 300.0, "seconds between VPC API lookups (with --vpc.api-url)"),
    Option("flashsystem.arrays", "list", (),
           "IBM FlashSystem / Storage Virtualize arrays as NAME=DIR, DIR holding the array Secret's "
           "management_address, username, password (and optionally ca.crt)"),
    Option("flashsystem.insecure-skip-verify", "bool", False,
           "labs only: do not check the arrays' TLS certificates"),
    Option("flashsystem.timeout", "float", 30.0, "seconds before a REST request to an array is given up"),
    Option("flashsystem.refresh-interval", "float", 60.0, "seconds between FlashSystem refreshes"),
    Option("flashsystem.concurrency", "int", 2, "REST requests in flight per array"),
    Option("vmware.vcenters", "list", (),
           "vCenters as NAME=DIR, DIR holding address, username, password (and optionally ca.crt): "
           "linked clones outside Kubernetes"),
    Option("vmware.folders", "list", (), "inventory paths to look in, e.g. DC0/vm/golden (default: every VM)"),
    Option("vmware.insecure-skip-verify", "bool", False, "labs only: do not check the vCenters' TLS certificates"),
    Option("vmware.timeout", "float", 60.0, "seconds before a vCenter refresh is given up"),
    Option("vmware.refresh-interval", "float", 300.0, "seconds between vCenter refreshes"),
    Option("qcow2.dirs", "list", (), "directories of qcow2 images to measure (linked clones via backing files)"),
    Option("qcow2.refresh-interval", "float", 30.0, "seconds between scans of those directories"),
    Option("rebuild.debounce", "float", 0.2, "seconds to gather changes before the metrics are re-rendered"),
)


def parse_listen_address(value: str) -> tuple[str | None, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
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
    for key in ("rbd.timeout", "rbd.refresh-interval", "kubernetes.read-timeout", "qcow2.refresh-interval",
                "flashsystem.timeout", "flashsystem.refresh-interval", "vmware.timeout", "vpc.timeout",
                "vpc.refresh-interval",
                "vmware.refresh-interval"):
        if getattr(settings, key.replace(".", "_").replace("-", "_")) <= 0:
            raise ConfigError(key, "must be greater than 0")
    flashsystem_arrays(settings)
    vcenters(settings)
    if settings.vpc_api_url and not settings.vpc_api_key_file:
        raise ConfigError("vpc.api-key-file", "is needed with vpc.api-url")
    if settings.vpc_api_url and not settings.vpc_api_url.startswith("https://"):
        raise ConfigError("vpc.api-url", f"expected an https:// URL, got {settings.vpc_api_url!r}")
    return settings


def _named_dirs(key: str, entries) -> list[tuple[str, str]]:
    out, names = [], set()
    for entry in entries:
        name, sep, directory = entry.partition("=")
        if not sep or not name or not directory:
            raise ConfigError(key, f"expected NAME=DIR, got {entry!r}")
        if name in names:
            raise ConfigError(key, f"{name!r} is configured twice")
        names.add(name)
        out.append((name, directory))
    return out


def vcenters(settings: Settings):
    out = []
    for name, directory in _named_dirs("vmware.vcenters", settings.vmware_vcenters):
        try:
            out.append(load_vcenter(name, Path(directory), settings.vmware_insecure_skip_verify,
                                    tuple(settings.vmware_folders)))
        except ValueError as exc:
            raise ConfigError("vmware.vcenters", f"vCenter {name!r}: {exc}") from None
    return tuple(out)


def flashsystem_arrays(settings: Settings):
    """The configured arrays, each read from its Secret directory (exit 2 naming the key if wrong)."""
    arrays = []
    for name, directory in _named_dirs("flashsystem.arrays", settings.flashsystem_arrays):
        try:
            arrays.append(load_array(name, Path(directory), settings.flashsystem_insecure_skip_verify))
        except ValueError as exc:
            raise ConfigError("flashsystem.arrays", f"array {name!r}: {exc}") from None
    return tuple(arrays)


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
