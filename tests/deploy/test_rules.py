"""Alert rules checked and unit-tested by the real promtool."""

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "rules" / "clonewatch.rules.yml"


def promtool(*args):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=ROOT)


def alerts():
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def test_rules_are_valid():
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_promtool_unit_tests_and_they_pass():
    proc = promtool("test", "rules", "deploy/rules/tests/clonewatch.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tested = set(re.findall(r"alertname: (\w+)", (ROOT / "deploy/rules/tests/clonewatch.test.yml").read_text()))
    assert {a["alert"] for a in alerts()} <= tested


def test_every_alert_has_summary_description_and_a_runbook_section():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9]+", "", line[3:].lower()) for line in runbook.splitlines() if line.startswith("## ")}
    for a in alerts():
        ann = a["annotations"]
        assert ann["summary"] and ann["description"], a["alert"]
        assert ann["runbook"].split("#")[1] in anchors, a["alert"]
        assert a["labels"]["severity"] in ("info", "warning", "critical")


FLEET = ROOT / "deploy" / "rules" / "clonewatch.fleet.rules.yml"


def test_fleet_recording_rules_are_valid_named_by_convention_and_each_is_unit_tested():
    proc = promtool("check", "rules", str(FLEET))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [r["record"] for g in yaml.safe_load(FLEET.read_text())["groups"] for r in g["rules"]]
    assert all(re.fullmatch(r"[a-z_]*:clonewatch_[a-z_]+:[a-z]+", name) for name in records), records
    proc = promtool("test", "rules", "deploy/rules/tests/clonewatch.fleet.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tested = set(re.findall(r"- expr: (\S+)", (ROOT / "deploy/rules/tests/clonewatch.fleet.test.yml").read_text()))
    untested = [r for r in records if r not in tested and not r.startswith("source:clonewatch_source_")
                and "cache_age" not in r]
    # The per-family max rules are tested through consumed_bytes and the totals built on them.
    assert "source:clonewatch_source_consumed_bytes:max" in tested and not untested, untested


def test_the_acm_allowlist_names_every_recorded_series():
    records = {r["record"] for g in yaml.safe_load(FLEET.read_text())["groups"] for r in g["rules"]}
    cm = yaml.safe_load((ROOT / "deploy/components/acm-observability/allowlist.yaml").read_text())
    for key in ("metrics_list.yaml", "uwl_metrics_list.yaml"):
        assert set(yaml.safe_load(cm["data"][key])["names"]) == records
