"""Every dashboard drawn in a real browser, as the OpenShift console's Perses view draws it: the page
tests/perses/page builds from Perses' own React packages (ViewDashboard, the Prometheus, time series,
stat, table, bar and pie plugins) shows each generated Perses dashboard (dashboards/perses/) in
Debian's headless Chromium, against real Prometheus servers scraping a living stack:

- the exporter on real Ceph + kmock with the e2e scenario (a CoW family, a full-copy family that fell
  back, a configured VPC copy, a clone still cloning, a flattened clone, KubeVirt VMs on those PVCs);
- a native exporter on the loadgen daemon's qcow2 directory (clones made, drifting and retired as
  the live stack's), a directory that is gone (a backend down), and a FlashSystem array with a
  FlashCopy clone in its background copy;
- the loadgen daemon;
- two "cluster" Prometheus servers with the project's rules and a hub federating their recorded
  series, for the hub's board (as tests/e2e/test_fleet.py).

For every dashboard: every panel finishes loading and draws data (no "No data", no error, no spinner
left), every variable lists values, legends name each series, units are drawn, efficiency reads
0-100 %. What is checked is what Perses holds and drew (window.clonewatch, see the page): its
variable state and query results, the DOM, and the text each chart drew on its canvas. A screenshot
of each dashboard and a report are written to tests/artifacts/dashboards/ (printed at the end)."""

import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e import scenario
from tests.support.cephcsi import CephCsiJournal
from tests.support.chromium import Chromium
from tests.support.flashsystem import FlashSystemDouble, copy_rate_bytes_per_second
from tests.support.objects import rbd_clone
from tests.support.perses_page import DASHBOARDS, PageServer, build
from tests.support.process import ROOT, ExporterProcess, free_port, pick
from tests.support.prometheus import Prometheus

ARTIFACTS = ROOT / "tests/artifacts/dashboards"
RULES = [str(ROOT / "deploy/rules/clonewatch.rules.yml"), str(ROOT / "deploy/rules/clonewatch.fleet.rules.yml")]
FEDERATE = '{__name__=~".*:clonewatch_.*:.*"}'     # docs/fleet.md: the recorded series only
SCRAPE = "5s"           # $__rate_interval is four of these: windows that always hold one of the loadgen's cycles
RATE_INTERVAL = "20s"
RANGE = "1m"            # the time range the page shows
SECONDS = {SCRAPE: 5, RANGE: 60}
WIDTH = 1440
# The live stack's loadgen (examples/live-qcow2.yaml), on a faster clock: clones replaced every few
# seconds, so each rate window holds new clones and every latency panel has points.
LOADGEN = {"name": "render", "backend": "qcow2", "golden": {"name": "golden", "size": "32MiB", "fill": "32MiB"},
           "groups": [{"name": "cow", "method": "clone", "count": 4}, {"name": "full", "method": "full-copy", "count": 1}],
           "drift": {"levels": ["1MiB"], "rate": "1MiB", "cap": "8MiB"}, "schedule": {"interval": "1s"},
           "retention": {"max_age": "6s", "max_clones": 5}, "limits": {"max_clones": 20, "max_bytes": "1GiB"}}
# Values chosen in a variable, where its first value would not show what the board is for: the family
# board's first source is a native one (qcow2, FlashSystem), whose volumes are no PVCs.
CHOSEN = {"clonewatch-family": {"source": "rhel9"}}


def dashboards() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]


@pytest.fixture(scope="module")
def stack(kube, pool, tmp_path_factory):
    """{"cluster": the Prometheus of the non-hub boards, "hub": the hub's}. Everything started goes
    into `undo`, which runs also when the set-up itself fails."""
    tmp = tmp_path_factory.mktemp("render")
    undo: list = []
    try:
        yield _stack(kube, pool, tmp, undo)
    finally:
        for step in reversed(undo):
            try:
                step()
            except Exception:       # undo the rest regardless
                pass


def _stack(kube, pool, tmp: Path, undo: list) -> dict:
    scenario.build_pool(pool)
    for obj in scenario.kubernetes_objects(pool.name):
        kube.create(obj)
    pool.clone("rhel9-img", "vm-flat-img")              # a csi-clone ceph-csi has since flattened
    pool.rbd("flatten", "--no-progress", pool.spec("vm-flat-img"))
    for obj in rbd_clone("vms", "vm-flat", pool.name, "vm-flat-img", "os-images", "rhel9", scenario.RBD_SC):
        kube.create(obj)
    for vm in scenario.virtual_machines():          # VMs on the PVCs: clones, full copies, a configured copy
        kube.create(vm)
    CephCsiJournal(pool).new_volume("pvc-leaked", 1028, size_mib=1028)     # its PV gone: space no PVC owns
    main = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}", f"--ceph.conf={pool.conf}",
                            "--rbd.refresh-interval=1", "--rbd.timeout=20"], tmp / "main.log")
    undo.append(main.stop)
    # The loadgen daemon, and an exporter on its directory (scripts/live.py's pair). A short path: it
    # names the family and the target in legends and on bars.
    images = Path(tempfile.mkdtemp(prefix="img-"))
    undo.append(lambda: shutil.rmtree(images, ignore_errors=True))
    (tmp / "loadgen.yaml").write_text(yaml.safe_dump({**LOADGEN, "qcow2": {"dir": str(images)}}))
    lg_port, lg_log = free_port(), open(tmp / "loadgen.log", "wb")
    undo.append(lg_log.close)
    loadgen = subprocess.Popen([sys.executable, "-m", "loadgen", "run", "--scenario", str(tmp / "loadgen.yaml"),
                                f"--web.listen-address=127.0.0.1:{lg_port}"], cwd=ROOT, stdout=lg_log, stderr=subprocess.STDOUT)
    undo.append(lambda: (loadgen.terminate(), loadgen.wait(10)))
    array = FlashSystemDouble(tmp)
    undo.append(array.close)
    array.create_vdisk("golden", 64 * 2**20)
    array.write("golden", 32 * 2**20)
    array.clone_like_csi("golden", "vm-eroding", copy_rate=50)
    array.advance(0.6 * 64 * 2**20 / copy_rate_bytes_per_second(50))
    native = ExporterProcess(["--no-kubernetes.enabled", "--no-rbd.enabled", f"--qcow2.dirs={images},{images / 'gone'}",
                              "--qcow2.refresh-interval=1", f"--flashsystem.arrays=fs1={array.write_secret_dir(tmp / 'fs1')}",
                              "--flashsystem.refresh-interval=1"], tmp / "native.log")
    undo.append(native.stop)
    main.wait_ready(timeout=120)
    native.wait_ready()
    main.wait_for(lambda s: len(pick(s, "clonewatch_source_efficiency_ratio")) == 3, what="families measured")
    native.wait_for(lambda s: len(pick(s, "clonewatch_source_efficiency_ratio")) == 2, what="qcow2 and FlashSystem families")
    exporters = [f"127.0.0.1:{main.port}", f"127.0.0.1:{native.port}"]
    east = Prometheus(tmp / "east", {"clonewatch-exporter": exporters, "clonewatch-loadgen": [f"127.0.0.1:{lg_port}"]},
                      RULES, external_labels={"cluster": "east"}, scrape_interval=SCRAPE)
    undo.append(east.stop)
    west = Prometheus(tmp / "west", {"clonewatch-exporter": exporters[1:]}, RULES, external_labels={"cluster": "west"},
                      scrape_interval=SCRAPE)
    undo.append(west.stop)
    hub = Prometheus(tmp / "hub", {}, [], scrape_interval=SCRAPE, scrape_configs=[
        {"job_name": f"federate-{name}", "honor_labels": True, "metrics_path": "/federate", "params": {"match[]": [FEDERATE]},
         "static_configs": [{"targets": [f"127.0.0.1:{leaf.port}"]}]} for name, leaf in (("east", east), ("west", west))])
    undo.append(hub.stop)
    # Until each Prometheus holds the range the page shows (a minute of scrapes of every target) and
    # answers every query its boards ask (rate() and increase() need two scrapes in their window, the
    # hub a federation round after the rules); past the deadline the test says which panels are empty.
    proms = {"cluster": east, "hub": hub}
    deadline = time.monotonic() + 180
    while (young(proms) or unanswered(proms)) and time.monotonic() < deadline:
        time.sleep(1)
    return proms


def young(stack: dict) -> bool:
    """Whether a Prometheus has scraped some target for less than RANGE."""
    scrapes = f"min(count_over_time(up[{RANGE}]))"
    return any(float(next(iter(p.query(scrapes)["data"]["result"]), {"value": (0, "0")})["value"][1]) <
               SECONDS[RANGE] / SECONDS[SCRAPE] for p in stack.values())


def prometheus_of(d: dict, stack: dict) -> Prometheus:
    return stack["hub"] if "cluster" in {v["spec"]["name"] for v in d["spec"]["variables"]} else stack["cluster"]


def unanswered(stack: dict) -> list[str]:
    """The panels whose queries have no data yet, asked as of two scrapes ago: the page's range ends later."""
    out, then = [], time.time() - 2 * SECONDS[SCRAPE]
    for d in dashboards():
        prom = prometheus_of(d, stack)
        for key, panel in d["spec"]["panels"].items():
            for q in panel["spec"]["queries"]:
                expr = re.sub(r'=~"\$\w+"', '=~".*"', q["spec"]["plugin"]["spec"]["query"])
                res = prom.api("query", query=expr.replace("$__rate_interval", RATE_INTERVAL), time=then)
                if res.get("status") == "success" and not res["data"]["result"]:
                    out.append(f"{d['metadata']['name']}: {key}")
    return out


@pytest.fixture(scope="module")
def page(stack):
    server = PageServer(build(), stack["cluster"].port, SCRAPE)
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = Chromium(tmp_path_factory.mktemp("chromium") / "profile")
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*"):
        old.unlink()
    reports: dict = {}
    yield reports
    (ARTIFACTS / "report.json").write_text(json.dumps(reports, indent=1, default=str))
    print(f"\nscreenshots and report.json of each dashboard drawn: {ARTIFACTS}")
    for name, r in reports.items():
        values = "; ".join(f"${k} {v['options']}" for k, v in r["variables"].items())
        print(f"  {name}: {len(r['panels'])} panels, {sum(len(q['series']) for q in r['queries'])} series, "
              f"{len(r['problems'])} problems; {values}")


# What a unit looks like where Perses draws it (@perses-dev/core 0.52's formatValue).
UNIT_DRAWN = {
    "bytes": r"\d (bytes|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\b",
    "bytes/sec": r"\d (bytes/sec|KB/s|MB/s|GB/s|KiB/s|MiB/s|GiB/s)",
    "seconds": r"\d(\.\d+)? ?(ms|s|m|h|d|seconds|minutes|hours|days)\b",
    "percent-decimal": r"\d%",
    "ops/sec": r"\d ops/sec",
    "requests/sec": r"\d requests/sec",
    "decimal": r"\d",
}
PERCENT = re.compile(r"(-?\d+(?:\.\d+)?)\s*%")


def check(d: dict, report: dict) -> list[str]:
    """What is wrong with the dashboard as the page drew it; nothing when every panel is done and right."""
    name = d["metadata"]["name"]
    problems = [f"{name}: on the page: {p}" for p in report["problems"]]
    # Variables: Perses listed values for each, and holds one of them (or All).
    for v in d["spec"]["variables"]:
        state = report["variables"].get(v["spec"]["name"])
        if not state or state["loading"] or state.get("error") or not state["options"]:
            problems.append(f"{name}: variable {v['spec']['name']}: {state}")
            continue
        chosen = state["value"] if isinstance(state["value"], list) else [state["value"]]
        if chosen not in (["$__all"], [".*"]) and not set(chosen) <= set(state["options"]):
            problems.append(f"{name}: variable {v['spec']['name']} holds {chosen}, not one of {state['options']}")
    queries = {q["query"]: q for q in report["queries"]}
    drawn = {p["title"].strip(): p for p in report["panels"]}
    for key, definition in d["spec"]["panels"].items():
        spec = definition["spec"]
        kind, options, where = spec["plugin"]["kind"], spec["plugin"]["spec"], f"{name}/{key}"
        p = drawn.get(spec["display"]["name"])
        if p is None:
            problems.append(f"{where}: not drawn")
            continue
        shown = set(p["text"]) | {t for c in p["charts"] for t in c["texts"]}
        text = "\n".join(sorted(shown))
        # Finished, without an error, not empty.
        if p["loading"] or p["errors"] or "No data" in shown:
            problems.append(f"{where}: loading {p['loading']}, errors {p['errors']}, text {text[:200]!r}")
            continue
        results = [queries.get(q["spec"]["plugin"]["spec"]["query"]) for q in spec["queries"]]
        if any(r is None or r["status"] != "success" or r["fetching"] for r in results):
            problems.append(f"{where}: queries not answered: {results}")
            continue
        series = [s for r in results for s in r["series"]]
        if not series:
            problems.append(f"{where}: the queries returned no series")
            continue
        # Drawn: every line with points, bars and slices; a number; table rows.
        charted = [s for c in p["charts"] for s in c["series"]]
        if kind in ("TimeSeriesChart", "BarChart", "PieChart") and (not charted or not all(s["points"] for s in charted)):
            problems.append(f"{where}: {kind} drew a series without a point: {charted}")
        if any(c["clipped"] for c in p["charts"]):
            problems.append(f"{where}: the pie is cut off or covered at {sum(c['clipped'] for c in p['charts'])} of its 4 edges")
        # Legends (and bars, and several stats) name each series in full, on screen, and no two alike: the
        # VM, the PVC, the family ...
        if kind != "Table" and (kind != "StatChart" or len(series) > 1):
            names = [s["name"] for s in series]
            missing = sorted(set(names) - shown)
            if missing:
                problems.append(f"{where}: series names not on screen: {missing}; hidden: {p['hidden'][:10]}")
            if len(set(names)) < len(names):
                problems.append(f"{where}: several series under one name: {sorted(names)}")
        if not p["titleShown"]:
            problems.append(f"{where}: the title is cut short: {p['title']!r}")
        if kind == "Table":
            # A label no series carries ("" for every one: the watches of a cluster-wide exporter) gets no column.
            carried = {k for s in series for k in s["labels"]}
            headers = [c.get("header", c["name"]) for c in options["columnSettings"] if not c.get("hide")
                       and (c["name"].startswith("value") or c["name"] in carried)]
            if cut := [h for h in headers if h not in shown]:
                problems.append(f"{where}: columns not on screen (too narrow a table?): {cut}; hidden: {p['hidden'][:10]}")
            labels = [c["name"] for c in options["columnSettings"] if not c.get("hide") and not c["name"].startswith("value")]
            rows = {tuple(s["labels"].get(label, "") for label in labels) for s in series}
            whole = [r for r in rows if all(v in shown for v in r if v)]
            if not whole or (len(whole) < len(rows) and not p["scrolls"]):
                problems.append(f"{where}: {len(whole)} of {len(rows)} rows on screen: {text[:300]!r}")
        # Units as drawn, and efficiency (a ratio) read as 0-100 %. A pie shows its values on hover only.
        units = {c.get("format", {}).get("unit") for c in options.get("columnSettings", [])}
        units |= {options.get("format", {}).get("unit"), options.get("yAxis", {}).get("format", {}).get("unit")}
        for unit in sorted(units - {None}) if kind != "PieChart" else []:
            if not re.search(UNIT_DRAWN[unit], text):
                problems.append(f"{where}: no value drawn in {unit}: {text[:300]!r}")
        if "percent-decimal" in units:
            percents = [float(x) for x in PERCENT.findall(text)]
            if not percents or not all(0 <= x <= 100 for x in percents):
                problems.append(f"{where}: percentages outside 0-100 %: {percents}")
    return problems


def open_dashboard(browser: Chromium, page: PageServer, d: dict, start: str) -> tuple[dict, list[str], Path]:
    """The dashboard drawn: (what the page reports, what is wrong with it, the screenshot), once every
    panel is drawn and right, or 60 s have passed."""
    name = d["metadata"]["name"]
    tab = browser.new_page(WIDTH, 4000)     # tall enough for every panel: Perses draws only the ones in view
    try:
        params = {"start": start, "refresh": "0s", **{f"var-{k}": v for k, v in CHOSEN.get(name, {}).items()}}
        tab.navigate(page.url(name, **params))
        tab.wait_for(f"window.clonewatch?.dashboard === {json.dumps(name)} || window.clonewatch?.error", 30, f"{name} loaded")
        deadline = time.monotonic() + 60
        while True:
            report = tab.evaluate("({error: window.clonewatch.error, variables: window.clonewatch.variables, "
                                  "queries: window.clonewatch.queries(), panels: window.clonewatch.panels(), "
                                  "bottom: document.querySelector('.react-grid-layout')?.getBoundingClientRect().bottom})")
            error = report.pop("error", None)
            report["problems"] = [error] * bool(error) + tab.problems
            problems = check(d, report)
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        shot = ARTIFACTS / f"{name}.png"
        tab.screenshot(shot, WIDTH, math.ceil(report["bottom"] or 4000) + 16)
        return report, problems, shot
    finally:
        tab.close()


@pytest.mark.parametrize("d", dashboards(), ids=lambda d: d["metadata"]["name"])
def test_every_panel_draws_data(d, stack, page, browser, artifacts):
    name = d["metadata"]["name"]
    page.upstream = prometheus_of(d, stack).port
    report, problems, shot = open_dashboard(browser, page, d, RANGE)
    artifacts[name] = {"screenshot": str(shot), "problems": problems, **report}
    assert not problems, "\n".join(problems)
