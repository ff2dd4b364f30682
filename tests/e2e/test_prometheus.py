"""Every dashboard panel query and every alert expression, evaluated by a real Prometheus that
scrapes real exporters and a real loadgen while a scenario built to produce each signal runs:
CoW and full-copy families with a forced fallback (real Ceph + kmock), a 201-children golden
and a 7-deep clone chain (native RBD), a broken exporter (unreachable API, missing rbd), a
target that does not answer, and a loadgen that refuses to overwrite a foreign file."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dashboards.boards import BOARDS
from dashboards.model import Table
from dashboards.render import console, perses
from tests.e2e import scenario
from tests.support.ceph import Pool, ceph_conf
from tests.support.cephcsi import CephCsiJournal
from tests.support.flashsystem import FlashSystemDouble, copy_rate_bytes_per_second
from tests.support.kubevirt import clone_conditions, vm_clone
from tests.support.objects import rbd_clone
from tests.support.process import ROOT, ExporterProcess, free_port, pick
from tests.support.prometheus import Prometheus

# Signals no local scenario can produce yet; each is covered by promtool unit tests instead.
NOT_PRODUCIBLE = {
    "CloneWatchLoadgenClonesSlow": "needs clones that take over 5 minutes",
    "CloneWatchMetricsRequestsRefused": "needs an endpoint with credentials: tests/e2e/test_prometheus_secured.py",
}
SUBSTITUTE = {"$__rate_interval": "15s", "${job}": ".*", "$job": ".*", "$namespace": ".*", "$source": "rhel9"}


def substitute(expr: str) -> str:
    for k, v in SUBSTITUTE.items():
        expr = expr.replace(k, v)
    return expr


@pytest.fixture(scope="module")
def stack(kube, pool, tmp_path_factory):
    """Everything started goes into `cleanup`, which runs also when the set-up itself fails (a
    half-started stack must not keep loading the machine for the tests after it)."""
    tmp = tmp_path_factory.mktemp("prom")
    procs, cleanup = [], []
    try:
        yield from _stack(kube, pool, tmp, procs, cleanup)
    finally:
        for undo in [p.stop for p in procs] + cleanup[::-1]:
            try:
                undo()
            except Exception:       # keep undoing the rest
                pass


def _stack(kube, pool, tmp, procs, cleanup):
    # 1. The Kubernetes scenario of the exporter e2e test: CoW family, full-copy family with fallbacks, VPC copy.
    scenario.build_pool(pool)
    for obj in scenario.kubernetes_objects(pool.name):
        kube.create(obj)
    # ... plus a csi-clone that ceph-csi has since flattened (CloneWatchCloneNoLongerShares).
    pool.clone("rhel9-img", "vm-flat-img")
    pool.rbd("flatten", "--no-progress", pool.spec("vm-flat-img"))
    for obj in rbd_clone("vms", "vm-flat", pool.name, "vm-flat-img", "os-images", "rhel9", scenario.RBD_SC):
        kube.create(obj)
    # ... VMs on its PVCs (the dashboards' VM panels) ...
    for vm in scenario.virtual_machines():
        kube.create(vm)
    # ... and a VM clone restoring since the scenario's clones were made (CloneWatchVMCloneStuck).
    kube.create({**vm_clone("vms", "clone-stuck", "rhel9-vm", "rhel9-vm-2"), "status": {
        "phase": "RestoreInProgress", "conditions": clone_conditions(("True", "Still processing"),
                                                                     ("False", "Still processing"))}})
    # ... and a ceph-csi volume whose PV is gone, just over the alert's 1 GiB (CloneWatchUnclaimedStorage).
    CephCsiJournal(pool).new_volume("pvc-leaked", 1028, size_mib=1028)
    main = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}", f"--ceph.conf={pool.conf}",
                            "--rbd.refresh-interval=1", "--rbd.timeout=20", "--kubernetes.read-timeout=5"],
                           tmp / "main.log")
    procs.append(main)
    # 2. Native mode on a pool with a 201-children golden and a 7-deep chain.
    big = Pool(ceph_conf(), prefix="prom")
    cleanup.append(big.remove)
    big.golden("g", 4)
    for i in range(201):
        big.clone("g", f"c{i:03d}")
    parent = "g"
    for depth in range(1, 8):
        big.clone(parent, f"chain{depth}")
        if depth < 7:
            big.rbd("snap", "create", "--no-progress", f"{big.spec(f'chain{depth}')}@base")
            big.rbd("snap", "protect", f"{big.spec(f'chain{depth}')}@base")
        parent = f"chain{depth}"
    native = ExporterProcess(["--no-kubernetes.enabled", f"--rbd.pools={big.name}", f"--ceph.conf={pool.conf}",
                              "--rbd.refresh-interval=2", "--rbd.timeout=20"], tmp / "native.log")
    procs.append(native)
    # 3. A broken exporter: nothing listens where its API should be, and its rbd does not exist.
    broken_kubeconfig = tmp / "broken-kubeconfig"
    broken_kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    broken = ExporterProcess([f"--kubeconfig={broken_kubeconfig}", "--rbd.client=cli", "--rbd.binary=/nonexistent/rbd",
                              "--rbd.pools=gone", "--rbd.refresh-interval=1", "--kubernetes.backoff-max=1"],
                             tmp / "broken.log")
    procs.append(broken)
    # 4. A loadgen daemon on qcow2; a foreign file sits where its second clone would go.
    images = tmp / "images"
    images.mkdir()
    for seq in range(2, 80, 3):          # foreign files where some of its clones would go: refused, counted
        (images / f"cwlg-prom-cow-{seq:05d}.qcow2").write_bytes(b"not ours")
    lg_port = free_port()
    (tmp / "lg.yaml").write_text(yaml.safe_dump({
        "name": "prom", "backend": "qcow2", "qcow2": {"dir": str(images)}, "golden": {"size": "16MiB"},
        "groups": [{"name": "cow", "method": "clone", "count": 3}, {"name": "full", "method": "full-copy", "count": 1}],
        "drift": {"levels": ["1MiB"]}, "schedule": {"interval": "1s"}, "retention": {"max_clones": 4, "max_age": "3s"}}))
    lg_log = open(tmp / "loadgen.log", "wb")
    cleanup.append(lg_log.close)
    loadgen = subprocess.Popen([sys.executable, "-m", "loadgen", "run", "--scenario", str(tmp / "lg.yaml"),
                                f"--web.listen-address=127.0.0.1:{lg_port}"], cwd=ROOT, stdout=lg_log,
                               stderr=subprocess.STDOUT)
    cleanup.append(lambda: (loadgen.terminate(), loadgen.wait(10)))
    # 5. A FlashSystem array with a clone 60% through its background copy (native mode).
    array = FlashSystemDouble(tmp)
    cleanup.append(array.close)
    array.create_vdisk("golden", 64 * 2**20)
    array.write("golden", 32 * 2**20)
    array.clone_like_csi("golden", "vm-eroding", copy_rate=50)
    array.advance(0.6 * 64 * 2**20 / copy_rate_bytes_per_second(50))
    flash = ExporterProcess(["--no-kubernetes.enabled", "--no-rbd.enabled",
                             f"--flashsystem.arrays=fs1={array.write_secret_dir(tmp / 'fs1')}",
                             "--flashsystem.refresh-interval=1"], tmp / "flash.log")
    procs.append(flash)
    # A Ceph that stalls one call (seen once on a loaded machine) costs a 20 s rbd timeout and a retry.
    main.wait_ready(timeout=120)
    native.wait_ready(timeout=120)      # the broken one never becomes ready, by design
    flash.wait_ready()
    main.wait_for(lambda s: len(pick(s, "clonewatch_source_efficiency_ratio")) == 3, what="families measured")
    native.wait_for(lambda s: pick(s, "clonewatch_source_clones"), what="native family")
    prom = Prometheus(tmp, {
        "clonewatch-exporter": [f"127.0.0.1:{p.port}" for p in procs] + [f"127.0.0.1:{free_port()}"],
        "clonewatch-loadgen": [f"127.0.0.1:{lg_port}"]}, [str(ROOT / "deploy/rules/clonewatch.rules.yml"),
                                                         str(ROOT / "deploy/rules/clonewatch.fleet.rules.yml")])
    cleanup.append(prom.stop)
    # Until Prometheus answers what the tests ask (rate() and increase() need two samples in their
    # window, recording rules an evaluation); past the deadline the tests say what is missing.
    t0, deadline = time.monotonic(), time.monotonic() + 120
    while (waiting := unanswered(prom)) and time.monotonic() < deadline:
        time.sleep(1)
    print(f"\nwaited {time.monotonic() - t0:.1f}s for Prometheus to answer the tests' queries; unanswered: {waiting}")
    yield prom


# Boards for a hub: their `cluster` variable exists only where federation adds the label (tests/e2e/test_fleet.py).
HUB_BOARDS = {"clonewatch-clusters.json"}


def boards():
    return [p for p in sorted((ROOT / "dashboards").glob("*.json")) if p.name not in HUB_BOARDS]


def dashboard_queries():
    seen = set()
    for path in boards():
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                seen.add(target["expr"])
                yield path.name, panel["title"], target["expr"]
    # The same boards as the console and Perses draw them, where a renderer rewrote a query (a table
    # reduced to its columns, a ratio in percent, a heatmap as quantiles).
    for b in (b for b in BOARDS if not b.hub):
        drawn = [(p["title"], t["expr"]) for row in console.board(b)["rows"] for p in row["panels"] for t in p["targets"]]
        drawn += [(p["spec"]["display"]["name"], q["spec"]["plugin"]["spec"]["query"])
                  for p in perses.spec(b)["panels"].values() for q in p["spec"]["queries"]]
        for title, expr in drawn:
            if expr not in seen:
                seen.add(expr)
                yield b.uid, title, expr


def alert_rules():
    doc = yaml.safe_load((ROOT / "deploy/rules/clonewatch.rules.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def variable_queries():
    for path in boards():
        for var in json.loads(path.read_text())["templating"]["list"]:
            if var["type"] == "query":
                m = re.match(r"label_values\((.*), (\w+)\)$", var["query"]["query"])
                yield path.name, var["name"], substitute(m.group(1)), m.group(2)


def unanswered(prom) -> list[str]:
    """What the tests below ask and Prometheus has no data for yet. A query it refuses is left to
    the tests: waiting does not mend it."""
    def empty(expr):
        res = prom.query(expr)
        return res.get("status") == "success" and not res["data"]["result"]
    out = [f"{board}: {title}" for board, title, expr in dashboard_queries() if empty(substitute(expr))]
    out += [f"{board}: ${name}" for board, name, selector, label in variable_queries()
            if not any(label in s for s in prom.api("series", **{"match[]": selector}).get("data", []))]
    out += [r["alert"] for r in alert_rules() if r["alert"] not in NOT_PRODUCIBLE and empty(r["expr"])]
    out += [f"rule {r['name']} not evaluated" for g in prom.api("rules")["data"]["groups"] for r in g["rules"]
            if r.get("health", "unknown") == "unknown"]
    return out


def test_every_dashboard_query_returns_data(stack):
    empty, failed, seen = [], [], []
    for board, title, expr in dashboard_queries():
        res = stack.query(substitute(expr))
        if res.get("status") != "success":
            failed.append((board, title, res.get("error")))
        elif not res["data"]["result"]:
            empty.append((board, title, substitute(expr)))
        else:
            seen.append({"board": board, "panel": title, "series": len(res["data"]["result"]),
                         "sample": [(r["metric"], r["value"][1]) for r in res["data"]["result"][:4]]})
    if os.environ.get("CLONEWATCH_E2E_REPORT"):      # what each panel showed, for humans (closing notes)
        Path(os.environ["CLONEWATCH_E2E_REPORT"]).write_text(json.dumps(seen, indent=1))
    assert not failed, failed
    assert not empty, empty


# Table columns whose label is "" here, so Prometheus drops it: the scenario's watches are all cluster-wide.
BLANK_HERE = {("Watches healthy", "namespace")}


def test_every_table_column_is_a_label_its_query_returns(stack):
    """The console and Perses show a table's named columns only: a column no series carries would be blank."""
    missing = []
    for b in (b for b in BOARDS if not b.hub):
        for panel in (p for p in b.panels() if isinstance(p, Table)):
            for q in panel.queries:
                labels = {k for r in stack.query(substitute(q.expr))["data"]["result"] for k in r["metric"]}
                missing += [(b.uid, panel.title, label) for label, _ in panel.columns
                            if label not in labels and (panel.title, label) not in BLANK_HERE]
    assert not missing, missing


def test_every_dashboard_variable_query_returns_values(stack):
    variables = list(variable_queries())
    assert variables
    for board, name, selector, label in variables:
        res = stack.api("series", **{"match[]": selector})
        assert res["status"] == "success" and any(label in s for s in res["data"]), (board, name)


def test_every_alert_expression_parses_and_returns_data(stack):
    empty = []
    for rule in alert_rules():
        res = stack.query(rule["expr"])
        assert res.get("status") == "success", (rule["alert"], res.get("error"))
        if not res["data"]["result"] and rule["alert"] not in NOT_PRODUCIBLE:
            empty.append(rule["alert"])
    assert not empty, empty


def test_rules_are_loaded_and_fallback_alert_carries_the_reason(stack):
    groups = stack.api("rules")["data"]["groups"]
    loaded = {r["name"] for g in groups for r in g["rules"]}
    assert {r["alert"] for r in alert_rules()} <= loaded
    assert all(r.get("health") == "ok" for g in groups for r in g["rules"]), \
        [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") != "ok"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alerts = stack.api("alerts")["data"]["alerts"]
        fallback = [a for a in alerts if a["labels"]["alertname"] == "CloneWatchCloneFellBackToCopy"]
        if len(fallback) == 2:
            break
        time.sleep(1)
    assert sorted(a["labels"]["persistentvolumeclaim"] for a in fallback) == ["win-1", "win-2"]
    win1 = next(a for a in fallback if a["labels"]["persistentvolumeclaim"] == "win-1")
    assert "NoVolumeSnapshotClass" in win1["annotations"]["description"]
    assert not any(a["labels"].get("persistentvolumeclaim") == "vpc-1" for a in fallback), "configured copy is no fallback"
