"""clonewatch-exporter command line: options, validation (exit 2 naming the key), run."""

import asyncio
import os
import sys
from collections.abc import Sequence

import structlog

from . import __version__
from .backends import registry
from .backends.rbd.librbd import calls_abandoned
from .config.logs import FORMATS, LEVELS, configure
from .config.settings import ConfigError, Option, Settings, parse, parse_listen_address
from .http import serve as webserve
from .runtime.heap import hold_mmap_threshold
from .runtime.serve import run

CORE_OPTIONS = (
    Option("web.listen-address", "str", ":9753", "address to serve /metrics, /healthz, /readyz on"),
    Option("web.config.file", "str", "", "TLS and basic auth for /metrics, in the Prometheus exporter-toolkit "
           "web config format (README: Securing /metrics)"),
    Option("web.authorization", "str", "none", "none, or kubernetes: a bearer token allowed to get /metrics "
           "by TokenReview + SubjectAccessReview"),
    Option("log.level", "str", "info", "one of " + ", ".join(LEVELS)),
    Option("log.format", "str", "json", "one of " + ", ".join(FORMATS)),
    Option("kubernetes.enabled", "bool", True,
           "watch Kubernetes; false = native mode, backend volumes and their parent chains only"),
    Option("kubeconfig", "str", "", "kubeconfig file (else $KUBECONFIG or ~/.kube/config, else in-cluster)"),
    Option("kubernetes.context", "str", "", "kubeconfig context to use"),
    Option("kubernetes.namespaces", "list", (), "only watch these namespaces (comma-separated; default all)"),
    Option("kubernetes.watch-timeout", "int", 300, "seconds a watch request asks the API server to stay open",
           positive=True, unit="seconds"),
    Option("kubernetes.read-timeout", "float", 330.0, "seconds without a byte before a watch is reopened",
           positive=True, unit="seconds"),
    Option("kubernetes.backoff-max", "float", 30.0, "longest wait between retries after API errors",
           positive=True, unit="seconds"),
    Option("kubernetes.absent-recheck", "float", 300.0, "seconds between looks for a CRD that is not installed",
           positive=True, unit="seconds"),
    Option("rebuild.debounce", "float", 0.2, "seconds to gather changes before the metrics are re-rendered",
           unit="seconds"),
)


def options() -> tuple[Option, ...]:
    """The core options, then each backend's, in registry order."""
    return CORE_OPTIONS + registry.options()


def load(argv: Sequence[str] | None = None) -> Settings:
    settings = parse(argv, options(), "clonewatch-exporter",
                     "Prometheus exporter: are your clones really copy-on-write?")
    if settings.log_level not in LEVELS:
        raise ConfigError("log.level", f"expected one of {', '.join(LEVELS)}, got {settings.log_level!r}")
    if settings.log_format not in FORMATS:
        raise ConfigError("log.format", f"expected one of {', '.join(FORMATS)}, got {settings.log_format!r}")
    parse_listen_address(settings.web_listen_address)
    webserve.check(settings.web_config_file, settings.web_authorization)
    registry.check(settings)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load(argv)
    except ConfigError as exc:
        print(f"clonewatch-exporter: configuration error: {exc}", file=sys.stderr)
        return 2
    registry.prepare(settings)       # before logging: a backend may need to set up the process
    configure(settings.log_level, settings.log_format)
    log = structlog.get_logger("clonewatch")
    log.info("starting", version=__version__, mmap_threshold_held=hold_mmap_threshold(),
             **{k: v for k, v in settings.as_dict().items() if k not in ("ceph_keyring",)})
    try:
        rc = asyncio.run(run(settings))
        if calls_abandoned():
            # A Ceph call was still running at shutdown (a stalled OSD): end now rather than wait
            # for Ceph's op timeout or unwind librados under it. Logs are flushed first.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
        return rc
    except ConfigError as exc:
        print(f"clonewatch-exporter: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
