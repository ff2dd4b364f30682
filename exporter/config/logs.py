"""structlog set-up shared by the exporter and loadgen: JSON lines or a console renderer, to stderr."""

import logging
import os
import sys

import structlog

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("json", "console")


def keep_c_libraries_off_stderr() -> None:
    """Ceph's C libraries write diagnostics straight to file descriptor 2, and for a malformed key
    they print the key. Our log keeps the real stderr; descriptor 2 goes to /dev/null. Their errors
    still reach the log, as the exceptions the bindings raise."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(saved, "w", buffering=1)


def configure(level: str = "info", fmt: str = "json") -> None:
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
