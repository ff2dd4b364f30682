"""scripts/local.sh as a newcomer runs it (a small qcow2 scenario): a fresh run directory each time,
the report named once, the exporter's view printed, the images removed."""

import re
import shutil
import subprocess
from pathlib import Path

from tests.support.process import free_port

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """name: local-small
backend: qcow2
qcow2:
  dir: /tmp/clonewatch-ignored/images
golden: {name: golden, size: 32MiB, fill: 32MiB}
groups:
  - {name: cow, method: clone, count: 2}
  - {name: full, method: full-copy, count: 1}
drift: {levels: [4MiB], pattern: sequential}
limits: {max_clones: 10, max_bytes: 1GiB}
"""


def _run(scenario: Path) -> str:
    done = subprocess.run(["scripts/local.sh", str(scenario)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                            "CLONEWATCH_PORT": str(free_port())})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_two_runs_get_their_own_directories_and_say_so_once(tmp_path):
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SCENARIO)
    outs = [_run(scenario), _run(scenario)]
    reports = [re.findall(r"^report: (\S+)", out, re.M) for out in outs]
    assert [len(r) for r in reports] == [1, 1], "the report is named once per run"
    runs = [Path(r[0]).parents[1] for r in reports]
    assert runs[0] != runs[1] and all(str(r).startswith("/tmp/clonewatch-local.") for r in runs)
    for out, run in zip(outs, runs, strict=True):
        assert "\n\n\n" not in out, "no pile-up of blank lines"
        assert re.search(r"^drift-4MiB ", out, re.M)
        view = out.split("The exporter's view of the same directory:\n")[1]
        assert f"{run}/images/golden.qcow2  qcow2    2 " in view
        assert (run / "report" / "report.html").exists()
        assert not list((run / "images").glob("*.qcow2")), "the images are removed"
    for run in runs:
        shutil.rmtree(run)
