"""Running storage commands: a clean CloneFailed for every way a command can fail, and a way to
stop the ones still running when the daemon is asked to stop."""

import os
import subprocess
import threading

from .base import CloneFailed

_running: set[subprocess.Popen] = set()
_lock = threading.Lock()


def run(argv: list[str], *, input_text: str | None = None, timeout: float = 600, env: dict | None = None,
        cwd: str | None = None) -> str:
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(env or {})}, cwd=cwd)
    except FileNotFoundError:
        raise CloneFailed(f"{argv[0]} is not installed") from None
    with _lock:
        _running.add(proc)
    try:
        out, err = proc.communicate(input_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise CloneFailed(f"{' '.join(argv[:3])} did not finish within {timeout:g}s") from None
    finally:
        with _lock:
            _running.discard(proc)
    if proc.returncode != 0:
        raise CloneFailed(f"{' '.join(argv[:3])} failed ({proc.returncode}): {err.strip()[-300:]}")
    return out


def terminate_all() -> int:
    """Stop every command still running (shutdown). Returns how many were stopped."""
    with _lock:
        procs = list(_running)
    for p in procs:
        try:
            p.terminate()
        except ProcessLookupError:
            pass
    return len(procs)
