"""Running storage commands: a clean CloneFailed for every way a command can fail."""

import os
import subprocess


def run(argv: list[str], *, input_text: str | None = None, timeout: float = 600, env: dict | None = None,
        cwd: str | None = None) -> str:
    from . import CloneFailed
    try:
        proc = subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, cwd=cwd)
    except FileNotFoundError:
        raise CloneFailed(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise CloneFailed(f"{' '.join(argv[:3])} did not finish within {timeout:g}s") from None
    if proc.returncode != 0:
        raise CloneFailed(f"{' '.join(argv[:3])} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return proc.stdout
