"""Quality gates the test command enforces: lint, types, architecture, no import cycles."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", [
    ["ruff", "check", "--no-cache", "."],
    ["mypy", "--no-incremental"],               # configured in pyproject.toml: strict on the pure core
    ["lint-imports", "--no-cache"],             # contracts in pyproject.toml
    ["python", "scripts/import-cycles.py"],
], ids=["ruff", "mypy", "import-linter", "import-cycles"])
def test_gate_passes(command):
    done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
