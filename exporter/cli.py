"""clonewatch-exporter command line: options, validation (exit 2 naming the key), run."""

import asyncio
import os
import sys
from collections.abc import Sequence

import structlog

from . import __version__
from .backends import registry
from .backends.rbd.librbd import calls_abandoned
from .config.core import CoreOptions
from .config.logs import FORMATS, LEVELS, configure
from .config.settings import ConfigError, Option, Settings, options_of, parse, parse_listen_address
from .http import serve as webserve
from .runtime.heap import hold_mmap_threshold
from .runtime.serve import run


def options() -> tuple[Option, ...]:
    """The core options, then each backend's, in registry order."""
    return options_of(CoreOptions) + registry.options()


def load(argv: Sequence[str] | None = None) -> Settings:
    settings = parse(argv, (CoreOptions, *registry.groups()), "clonewatch-exporter",
                     "Prometheus exporter: are your clones really copy-on-write?")
    core = settings.of(CoreOptions)
    if core.log_level not in LEVELS:
        raise ConfigError("log.level", f"expected one of {', '.join(LEVELS)}, got {core.log_level!r}")
    if core.log_format not in FORMATS:
        raise ConfigError("log.format", f"expected one of {', '.join(FORMATS)}, got {core.log_format!r}")
    parse_listen_address(core.web_listen_address)
    webserve.check(core.web_config_file, core.web_authorization)
    registry.check(settings)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load(argv)
    except ConfigError as exc:
        print(f"clonewatch-exporter: configuration error: {exc}", file=sys.stderr)
        return 2
    registry.prepare(settings)       # before logging: a backend may need to set up the process
    core = settings.of(CoreOptions)
    configure(core.log_level, core.log_format)
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
