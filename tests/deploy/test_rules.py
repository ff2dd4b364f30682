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
