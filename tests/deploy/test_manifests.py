"""Generated artefacts are up to date, and the dashboards are importable Grafana JSON."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_files_are_up_to_date():
    proc = subprocess.run([sys.executable, "scripts/gen-manifests.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboards_are_grafana_json_with_datasource_and_job_variables():
    boards = sorted((ROOT / "dashboards").glob("*.json"))
    assert len(boards) == 5
    assert ROOT / "dashboards" / "clonewatch-clusters.json" in boards      # the hub, checked for its own variable below
    uids = set()
    for path in boards:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        names = [v["name"] for v in board["templating"]["list"]]
        # The hub's board selects clusters, a cluster's boards select the exporter job.
        assert names[:2] == ["datasource", "cluster" if path.name == "clonewatch-clusters.json" else "job"], path.name
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)) and len(ids) >= 6
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])
            g = panel["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24
    assert len(uids) == 5


def test_check_covers_every_dashboard_file():
    """Every dashboard file in the tree is one the generator writes, so --check compares it: no board left
    behind by a definition that was renamed or removed."""
    from dashboards import files
    generated = set(files.outputs(ROOT))
    on_disk = {*ROOT.glob("dashboards/*.json"), *ROOT.glob(f"{files.PERSES_JSON}/*.json"), ROOT / files.CONSOLE,
               *ROOT.glob("deploy/components/perses/dashboards*.yaml")}
    assert on_disk <= generated, sorted(str(p.relative_to(ROOT)) for p in on_disk - generated)
    assert len([p for p in generated if p.parent.name == "perses" and p.suffix == ".json"]) == 5
