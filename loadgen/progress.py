"""A progress bar on a terminal; plain structured log lines when not a TTY."""

import sys

import structlog

log = structlog.get_logger("clonewatch.loadgen")


class Progress:
    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._open = False

    def update(self, phase: str, done: int, total: int) -> None:
        if self.tty:
            width = 30
            filled = int(width * done / total) if total else width
            self.stream.write(f"\r{phase:<16} [{'#' * filled}{'-' * (width - filled)}] {done}/{total} ")
            self.stream.flush()
            self._open = True
            if done >= total:
                self.stream.write("\n")
                self._open = False
        elif done == total or done % max(1, total // 5) == 0:
            log.info("progress", phase=phase, done=done, total=total)
