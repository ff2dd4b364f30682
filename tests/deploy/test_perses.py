"""The Perses dashboards, checked by Perses' own published packages, not by a copy of our expectations:
tests/perses/check.mjs runs the zod schemas of @perses-dev/core and, through tsc, the options types
the plugin packages export (versions pinned in tests/perses/package-lock.json, installed by
scripts/setup.sh with npm ci). Every generated dashboard and the component's resources pass; a
dashboard broken in each way the Perses server would refuse fails, and says where."""

import copy
import json
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "tests/perses"


def check(paths: list[Path]) -> subprocess.CompletedProcess:
    assert (CHECK / "node_modules/@perses-dev/core").is_dir(), "tests/perses has no node_modules: run scripts/setup.sh"
    return subprocess.run(["node", "check.mjs", *map(str, paths)], cwd=CHECK, capture_output=True, text=True, timeout=300)


def component_resources(tmp_path: Path) -> list[Path]:
    """deploy/components/perses as JSON, one file per resource."""
    out = []
    for source in sorted((ROOT / "deploy/components/perses").glob("*.yaml")):
        for doc in yaml.safe_load_all(source.read_text()):
            if doc and doc.get("apiVersion", "").startswith("perses.dev/"):
                out.append(tmp_path / f"{doc['kind']}-{doc['metadata']['name']}.json")
                out[-1].write_text(json.dumps(doc))
    return out


def test_every_perses_dashboard_and_resource_passes_perses_own_checks(tmp_path):
    files = sorted((ROOT / "dashboards/perses").glob("*.json")) + component_resources(tmp_path)
    assert len(files) == 5 + 4 + 1, [f.name for f in files]
    proc = check(files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith(f"{len(files)} files checked: no problems")


def _panels(d: dict) -> dict:
    return d["spec"]["panels"]


def _spec(d: dict, panel: str) -> dict:
    return _panels(d)[panel]["spec"]["plugin"]["spec"]


def _query(d: dict, panel: str) -> dict:
    return _panels(d)[panel]["spec"]["queries"][0]["spec"]["plugin"]["spec"]


# What the Perses server would refuse, and what the check says about it.
BREAKS = {
    "unknown-field": (lambda d: _spec(d, "efficiency-per-source-family").update(bogus=1), "'\"bogus\"' does not exist"),
    "bad-unit": (lambda d: _spec(d, "saved-by-copy-on-write")["format"].update(unit="gigabytes"), "'\"gigabytes\"' is not assignable"),
    "dangling-ref": (lambda d: d["spec"]["layouts"][0]["spec"]["items"][0]["content"].update({"$ref": "#/spec/panels/nope"}),
                     '$ref "#/spec/panels/nope" names no panel'),
    "bad-ref-form": (lambda d: d["spec"]["layouts"][0]["spec"]["items"][1]["content"].update({"$ref": "clones"}),
                     "is not assignable to type '`#/spec/panels/${string}`'"),
    "wrong-enum": (lambda d: _spec(d, "clone-types")["legend"].update(position="top"), "'\"top\"' is not assignable"),
    "field-of-another-plugin": (lambda d: _spec(d, "clones").update(radius=50), "'\"radius\"' does not exist in type 'StatChartOptions'"),
    "missing-required": (lambda d: _spec(d, "backends-down").pop("calculation"), "calculation"),
    "query-field": (lambda d: _query(d, "clones").update(instant=True), "does not exist in type 'PrometheusTimeSeriesQuerySpec'"),
    "bad-duration": (lambda d: d["spec"].update(duration="1 day"), "Must be a valid duration string"),
    "undefined-variable": (lambda d: _query(d, "clones").update(query='sum(x{job=~"$jobs"})'), "$jobs is no variable"),
    "variable-enum": (lambda d: d["spec"]["variables"][0]["spec"].update(sort="random"), "Invalid enum value"),
    "panel-without-name": (lambda d: _panels(d)["clones"]["spec"]["display"].pop("name"), "display.name: Required"),
    "bad-name": (lambda d: d["metadata"].update(name="clonewatch fleet"), "metadata.name: Must only contains"),
}


def test_the_check_fails_on_what_perses_would_refuse(tmp_path):
    good = json.loads((ROOT / "dashboards/perses/clonewatch-fleet.json").read_text())
    files = []
    for name, (breaking, _) in BREAKS.items():
        broken = copy.deepcopy(good)
        breaking(broken)
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(broken, indent=2))
    source = yaml.safe_load((ROOT / "deploy/components/perses/datasource.yaml").read_text())
    source["spec"]["config"]["plugin"]["spec"]["scrapeInterval"] = "1 minute"
    files.append(tmp_path / "datasource-duration.json")
    files[-1].write_text(json.dumps(source))
    proc = check(files)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = {f.stem: [line for line in proc.stdout.splitlines() if line.startswith(f"{f}: ")] for f in files}
    for name, (_, says) in BREAKS.items():
        assert any(says in line for line in said[name]), (name, said[name])
    assert any("'\"1 minute\"' is not assignable to type 'DurationString" in line for line in said["datasource-duration"]), said
