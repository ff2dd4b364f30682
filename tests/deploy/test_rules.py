"""Alert rules checked and unit-tested by the real promtool."""

import re
import subprocess
from pathlib import Path

import yaml

from tests.support.rules import PLACEHOLDER_BASE, alerts, heading_anchors, replicated

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "rules" / "clonewatch.rules.yml"
TESTS = ROOT / "deploy" / "rules" / "tests" / "clonewatch.test.yml"


def promtool(*args):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=ROOT)


def test_rules_are_valid():
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_promtool_unit_tests_and_they_pass():
    proc = promtool("test", "rules", "deploy/rules/tests/clonewatch.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tested = set(re.findall(r"alertname: (\w+)", TESTS.read_text()))
    assert {a["alert"] for a in alerts(RULES)} <= tested


def test_every_alert_has_severity_summary_description_and_a_runbook_url_to_its_section():
    anchors = heading_anchors((ROOT / "docs" / "runbook.md").read_text())
    for a in alerts(RULES):
        ann = a["annotations"]
        assert a["labels"]["severity"] in ("info", "warning", "critical"), a["alert"]
        assert ann["summary"] and ann["description"], a["alert"]
        base, _, anchor = ann["runbook_url"].partition("#")
        # One base for every alert: what the overlays' replacement swaps (deploy/components/runbook-url).
        assert base == PLACEHOLDER_BASE, (a["alert"], base)
        assert anchor in anchors, (a["alert"], anchor, sorted(anchors))
        assert "runbook" not in ann, "runbook_url replaces the repository-relative runbook annotation"


def test_promtool_tests_check_every_alerts_annotations():
    """promtool compares exp_annotations with all of an alert's annotations: one firing case per alert
    that states them, runbook_url included, covers them."""
    covered = set()
    for test in yaml.safe_load(TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            for exp in case.get("exp_alerts") or []:
                if {"summary", "description", "runbook_url"} <= set(exp.get("exp_annotations", {})):
                    covered.add(case["alertname"])
    assert covered == {a["alert"] for a in alerts(RULES)}


def test_every_promtool_test_gives_the_same_answers_from_two_replicas_and_from_two_jobs(tmp_path):
    """Each test of both files again, every series of a cluster object coming from two exporter
    replicas (two instances), then from two jobs scraping one exporter: the alerts and the recorded
    series must be exactly those of one exporter, nothing counted twice, no join failing."""
    for source in (TESTS, ROOT / "deploy/rules/tests/clonewatch.fleet.test.yml"):
        for how in ("replicas", "jobs"):
            derived = replicated(source, how, tmp_path / f"{how}-{source.name}")
            proc = promtool("test", "rules", str(derived))
            assert proc.returncode == 0, (source.name, how, proc.stdout[-6000:] + proc.stderr)


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
