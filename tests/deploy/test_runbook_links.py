"""The alerts link where a person can click: every overlay sets the base of the runbook_url
annotations (deploy/components/runbook-url), each link ends in a section of docs/runbook.md, and an
overlay with its base set ships no placeholder link."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.rules import PLACEHOLDER_BASE, alerts, heading_anchors

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p.parent.name for p in (ROOT / "deploy" / "overlays").glob("*/kustomization.yaml")
                  if not p.parent.name.startswith("."))
OURS = "https://git.example.org/ops/clonewatch/blob/v0.1.0/docs/runbook.md"
PLACEHOLDER_HOST = PLACEHOLDER_BASE.split("/")[2]


def build(path: Path) -> tuple[str, list[dict]]:
    proc = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, [d for d in yaml.safe_load_all(proc.stdout) if d]


def links(items: list[dict]) -> dict[str, str]:
    [rule] = [d for d in items if d["kind"] == "PrometheusRule"]
    return {r["alert"]: r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


def sections() -> dict[str, str]:
    """alert -> the section of docs/runbook.md its runbook_url names (checked to exist in test_rules.py)."""
    return {a["alert"]: a["annotations"]["runbook_url"].partition("#")[2]
            for a in alerts(ROOT / "deploy/rules/clonewatch.rules.yml")}


def assert_links_to(items: list[dict], base: str) -> None:
    anchors = heading_anchors((ROOT / "docs" / "runbook.md").read_text())
    got = links(items)
    assert got == {alert: f"{base}#{section}" for alert, section in sections().items()}
    assert {url.partition("#")[2] for url in got.values()} <= anchors
    assert not [d for d in items if d["metadata"]["name"] == "clonewatch-runbook"], "local-config: never applied"


def declared_base(overlay: Path) -> str:
    return yaml.safe_load((overlay / "runbook.yaml").read_text())["data"]["base"]


def test_the_shipped_overlays_are_the_ones_checked():
    assert OVERLAYS == ["kubernetes", "openshift"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_sets_the_runbook_base_its_alerts_link_to(overlay):
    """The base each overlay declares is the one all 16 links carry; an overlay that declares a real
    one (claims to be ready) carries the placeholder nowhere."""
    path = ROOT / "deploy" / "overlays" / overlay
    base = declared_base(path)
    text, items = build(path)
    assert_links_to(items, base)
    if base != PLACEHOLDER_BASE:
        assert PLACEHOLDER_HOST not in text
    else:
        # Not ready until someone sets it, and the file says so where they will look.
        assert "Set it before" in (path / "runbook.yaml").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_overlay_whose_base_is_set_ships_no_placeholder(overlay, tmp_path):
    """As a user does it: a copy of the overlay with its runbook.yaml's base set (the copy sits beside
    the original so its relative paths hold)."""
    copy = ROOT / "deploy" / "overlays" / f".test-{tmp_path.name}"
    shutil.copytree(ROOT / "deploy" / "overlays" / overlay, copy)
    try:
        doc = (copy / "runbook.yaml").read_text()
        (copy / "runbook.yaml").write_text(doc.replace(PLACEHOLDER_BASE, OURS))
        text, items = build(copy)
    finally:
        shutil.rmtree(copy)
    assert_links_to(items, OURS)
    assert PLACEHOLDER_HOST not in text


def test_an_overlay_on_top_of_a_shipped_one_sets_the_base_as_docs_runbook_md_says(tmp_path):
    """docs/runbook.md's recipe for an overlay that takes ours as a resource (kept as it is)."""
    recipe = next(block for block in (ROOT / "docs" / "runbook.md").read_text().split("```yaml\n")[1:]
                  if "clonewatch-runbook" in block).split("```")[0]
    doc = yaml.safe_load(recipe)
    assert doc["resources"] == ["../openshift"]
    [op] = yaml.safe_load(doc["patches"][0]["patch"])
    base = op["value"]
    assert base.startswith("https://") and base != PLACEHOLDER_BASE
    overlay = ROOT / "deploy" / "overlays" / f".test-{tmp_path.name}"
    overlay.mkdir()
    try:
        (overlay / "kustomization.yaml").write_text(yaml.safe_dump(doc))
        text, items = build(overlay)
    finally:
        shutil.rmtree(overlay)
    assert_links_to(items, base)
    assert PLACEHOLDER_HOST not in text


def test_an_overlay_with_the_component_but_no_base_does_not_build(tmp_path):
    overlay = ROOT / "deploy" / "overlays" / f".test-{tmp_path.name}"
    overlay.mkdir()
    try:
        (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
            "resources": ["../../base"], "components": ["../../components/runbook-url"]}))
        proc = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True)
    finally:
        shutil.rmtree(overlay)
    assert proc.returncode != 0 and "clonewatch-runbook" in proc.stderr
