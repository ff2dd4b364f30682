"""Two exporter replicas, and a second job scraping one of them, evaluated by a real Prometheus with
the shipped alert and fleet rules: each alert fires once per PVC, StorageClass, family, volume,
backend target or watch, exactly as a Prometheus that scrapes one replica of each sees it, and every
recorded fleet series and every dashboard query holds the same values. Each replica pair sees one
world: the Kubernetes scenario on real Ceph (kmock) with a flattened clone, a 7-deep chain and VMs
on its PVCs; a FlashSystem array with a golden of 201 snapshots and a clone 60% through its
background copy; an exporter whose API server and rbd do not exist. Plus a target that does not
answer. The rules' `for:` is 1 s in a copy (tests/support/prometheus.py), their expressions as shipped."""

import json
import re
import time
from collections import Counter

import pytest
import yaml

from dashboards.boards import BOARDS
from tests.e2e import scenario
from tests.support.cephcsi import CephCsiJournal
from tests.support.flashsystem import FlashSystemDouble, copy_rate_bytes_per_second
from tests.support.kubevirt import clone_conditions, vm_clone
from tests.support.objects import rbd_clone
from tests.support.process import ROOT, ExporterProcess, free_port, pick
from tests.support.prometheus import Prometheus, rules_firing_after

CHAIN = 7
SNAPSHOTS = 201
# What names each alert's subject: it must fire once per value of these, with no other labels
# (no job or instance: the replicas' copies are one alert). ExporterDown is about a scrape target.
SUBJECT = {
    "CloneWatchCloneFellBackToCopy": ("namespace", "persistentvolumeclaim"),
    "CloneWatchCopyOnlyStorageClassUsedForClones": ("storageclass",),
    "CloneWatchCloneStuck": ("namespace", "persistentvolumeclaim"),
    "CloneWatchCloneNoLongerShares": ("namespace", "persistentvolumeclaim"),
    "CloneWatchFamilyEfficiencyLow": ("source_namespace", "source_name", "backend"),
    "CloneWatchCloneChainAtSoftLimit": ("backend", "target", "volume"),
    "CloneWatchCloneChainNearHardLimit": ("backend", "target", "volume"),
    "CloneWatchTooManyClonesOfOneSource": ("source_namespace", "source_name", "backend"),
    "CloneWatchFlashCopyErodingSavings": ("backend", "target", "volume"),
    "CloneWatchBackendDown": ("backend", "target"),
    "CloneWatchBackendStale": ("backend", "target"),
    "CloneWatchKubernetesWatchFailing": ("resource", "namespace"),
    "CloneWatchExporterDown": ("job", "instance"),
    "CloneWatchVMCloneStuck": ("namespace", "virtualmachineclone"),
    "CloneWatchUnclaimedStorage": ("backend", "target", "reason"),
}
# Labels an alert carries besides its subject: those group_left copies in to name the clone's source.
DETAIL = {"source_namespace", "source_name", "source_kind", "clone_type", "expected_clone_type", "fallback_reason",
          "phase", "reason", "target"}
# No exporter replica duplicates these: a scraper with wrong credentials (tests/e2e/test_prometheus_secured.py)
# and the load generator's own (it runs once); promtool covers them (deploy/rules/tests/).
NOT_HERE = {"CloneWatchMetricsRequestsRefused", "CloneWatchLoadgenCloneFailures", "CloneWatchLoadgenClonesSlow"}


def pair(args: list[str], tmp, name: str) -> list[ExporterProcess]:
    return [ExporterProcess(args, tmp / f"{name}-{i}.log") for i in (1, 2)]


@pytest.fixture(scope="module")
def world(kube, pool, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replicas")
    procs, undo = [], []
    try:
        yield _world(kube, pool, tmp, procs, undo)
    finally:
        for step in [p.stop for p in procs] + undo[::-1]:
            try:
                step()
            except Exception:       # undo the rest regardless
                pass


def _world(kube, pool, tmp, procs, undo):
    # Kubernetes on real Ceph: the e2e scenario, a flattened csi-clone, and a chain CHAIN clones deep.
    scenario.build_pool(pool)
    for obj in scenario.kubernetes_objects(pool.name):
        kube.create(obj)
    pool.clone("rhel9-img", "vm-flat-img")
    pool.rbd("flatten", "--no-progress", pool.spec("vm-flat-img"))
    for obj in rbd_clone("vms", "vm-flat", pool.name, "vm-flat-img", "os-images", "rhel9", scenario.RBD_SC):
        kube.create(obj)
    for vm in scenario.virtual_machines():          # for the dashboards' VM panels
        kube.create(vm)
    kube.create({**vm_clone("vms", "clone-stuck", "rhel9-vm", "rhel9-vm-2"), "status": {      # restoring for days
        "phase": "RestoreInProgress", "conditions": clone_conditions(("True", "Still processing"),
                                                                     ("False", "Still processing"))}})
    pool.golden("chain0", 4)
    for depth in range(1, CHAIN + 1):
        pool.clone(f"chain{depth - 1}", f"chain{depth}")
        if depth < CHAIN:
            pool.rbd("snap", "create", "--no-progress", f"{pool.spec(f'chain{depth}')}@base")
            pool.rbd("snap", "protect", f"{pool.spec(f'chain{depth}')}@base")
    CephCsiJournal(pool).new_volume("pvc-leaked", 1028, size_mib=1028)      # its PV gone: over 1 GiB leaked
    kubeconfig = kube.write_kubeconfig(tmp / "kubeconfig")
    cluster = pair([f"--kubeconfig={kubeconfig}", f"--ceph.conf={pool.conf}", "--rbd.refresh-interval=1",
                    "--rbd.timeout=20", "--kubernetes.read-timeout=5"], tmp, "cluster")
    procs += cluster
    # A FlashSystem array (native mode): a golden with SNAPSHOTS copy-on-write snapshots, and another
    # golden whose clone is 60% through its background copy.
    array = FlashSystemDouble(tmp)
    undo.append(array.close)
    goldens = {name: array.create_vdisk(name, 64 * 2**20) for name in ("golden", "golden2")}
    for name in goldens:
        array.write(name, 32 * 2**20)
    for i in range(SNAPSHOTS):
        array.snapshot_like_csi("golden", f"snap{i:03d}")
    eroding = array.clone_like_csi("golden2", "vm-eroding", copy_rate=50)
    golden = f"fs1/{goldens['golden'].uid}"      # native mode names a volume array/UID
    array.advance(0.6 * 64 * 2**20 / copy_rate_bytes_per_second(50))
    flash = pair(["--no-kubernetes.enabled", "--no-rbd.enabled", "--flashsystem.refresh-interval=1",
                  f"--flashsystem.arrays=fs1={array.write_secret_dir(tmp / 'fs1')}"], tmp, "flash")
    procs += flash
    # Broken: nothing listens where the API server should be, and its rbd does not exist.
    broken_kubeconfig = tmp / "broken-kubeconfig"
    broken_kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    broken = pair([f"--kubeconfig={broken_kubeconfig}", "--rbd.client=cli", "--rbd.binary=/nonexistent/rbd",
                   "--rbd.pools=gone", "--rbd.refresh-interval=1", "--kubernetes.backoff-max=1"], tmp, "broken")
    procs += broken
    for p in cluster:
        p.wait_ready(timeout=120)
        p.wait_for(lambda s: len(pick(s, "clonewatch_source_efficiency_ratio")) == 3
                   and pick(s, "clonewatch_volume_clone_depth", volume=f"{pool.name}/chain{CHAIN}"), what="measured")
    for p in flash:
        p.wait_ready()
        p.wait_for(lambda s: pick(s, "clonewatch_source_clones", source_name=golden) == [SNAPSHOTS], what="snapshots")
    for p in broken:        # never ready, by design: wait until it reports its failures
        p.wait_for(lambda s: pick(s, "clonewatch_backend_up", target="gone") == [0]
                   and pick(s, "clonewatch_kubernetes_watch_healthy") and not any(
                       pick(s, "clonewatch_kubernetes_watch_healthy")), what="failing")
    dead = f"127.0.0.1:{free_port()}"
    rules = [str(rules_firing_after(ROOT / "deploy/rules/clonewatch.rules.yml", tmp / "alerts.rules.yml", "1s")),
             str(ROOT / "deploy/rules/clonewatch.fleet.rules.yml")]
    first = [cluster[0], flash[0], broken[0]]
    one = Prometheus(tmp / "prom-one", {"clonewatch-exporter": [f"127.0.0.1:{p.port}" for p in first] + [dead]}, rules)
    undo.append(one.stop)
    two = Prometheus(tmp / "prom-two", {
        "clonewatch-exporter": [f"127.0.0.1:{p.port}" for p in cluster + flash + broken] + [dead],
        "clonewatch-exporter-again": [f"127.0.0.1:{p.port}" for p in first]}, rules)
    undo.append(two.stop)
    watches = {(dict(ls).get("resource"), dict(ls).get("namespace") or None)
               for (name, ls) in broken[0].samples() if name == "clonewatch_kubernetes_watch_healthy"}
    expected = {
        "CloneWatchCloneFellBackToCopy": {("vms", "win-1"), ("vms", "win-2")},
        "CloneWatchCopyOnlyStorageClassUsedForClones": {(scenario.VPC_SC,)},
        "CloneWatchCloneStuck": {("vms", "pending-1")},
        "CloneWatchCloneNoLongerShares": {("vms", "vm-flat")},
        "CloneWatchFamilyEfficiencyLow": {("os-images", "win", "rbd")},
        "CloneWatchCloneChainAtSoftLimit": {("rbd", pool.name, f"{pool.name}/chain{d}") for d in (4, 5, 6)},
        "CloneWatchCloneChainNearHardLimit": {("rbd", pool.name, f"{pool.name}/chain7")},
        "CloneWatchTooManyClonesOfOneSource": {(None, golden, "flashsystem")},      # native: no namespace
        "CloneWatchFlashCopyErodingSavings": {("flashsystem", "fs1", f"fs1/{eroding.uid}")},
        "CloneWatchBackendDown": {("rbd", "gone")},
        "CloneWatchBackendStale": {("rbd", "gone")},
        "CloneWatchKubernetesWatchFailing": watches,
        "CloneWatchExporterDown": {("clonewatch-exporter", dead)},
        "CloneWatchVMCloneStuck": {("vms", "clone-stuck")},
        "CloneWatchUnclaimedStorage": {("rbd", pool.name, "leaked")},
    }
    # What one replica of each pair says, straight from its /metrics: the fleet totals must be these.
    truth = [cluster[0].samples(), flash[0].samples()]
    totals = {":clonewatch_pvc_clones:count": len(pick(truth[0], "clonewatch_pvc_clone_info")),
              ":clonewatch_source_saved_bytes:sum": sum(sum(pick(s, "clonewatch_source_saved_bytes")) for s in truth),
              ":clonewatch_pvc_clone_fallbacks:count": sum(pick(truth[0], "clonewatch_pvc_clone_fallback"))}
    for prom in (two, one):     # every rule has evaluated the scraped data (or the wait ran out: the tests say what is wrong)
        wait_for_alerts(prom, expected)
    return one, two, expected, totals


def subjects(alerts: list[dict]) -> dict[str, Counter]:
    """alertname -> how many alerts name each subject."""
    out: dict[str, Counter] = {}
    for a in alerts:
        name = a["labels"]["alertname"]
        out.setdefault(name, Counter())[tuple(a["labels"].get(k) for k in SUBJECT.get(name, ()))] += 1
    return out


def wait_for_alerts(prom: Prometheus, expected: dict, timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        firing = prom.alerts()
        if {name: set(c) for name, c in subjects(firing).items()} == expected or time.monotonic() > deadline:
            return firing
        time.sleep(1)


def settled(problems, timeout: float = 30) -> list:
    """problems() again until it finds none or the time is up; what it found last. On a loaded machine
    a replica's refresh can fail for a scrape or two, and the Prometheus over one replica of each has
    no other replica to fill in meanwhile."""
    deadline = time.monotonic() + timeout
    while (found := problems()) and time.monotonic() < deadline:
        time.sleep(1)
    return found


def alert_labels(prom: Prometheus) -> list:
    return sorted(sorted(a["labels"].items()) for a in prom.alerts())


def recorded(prom: Prometheus, records: list[str]) -> dict:
    return {tuple(sorted(r["metric"].items())): float(r["value"][1])
            for name in records for r in prom.query(name)["data"]["result"]}


def differences(one: dict, two: dict) -> list:
    out = [("only in one of them", key) for key in one.keys() ^ two.keys()]
    for key in one.keys() & two.keys():
        # An age runs with the clock and starts over at each replica's own refresh: the oldest
        # replica's is up to one refresh interval (10 s here: VPC without its API) off replica 1's.
        slack = 12 if "cache_age" in dict(key)["__name__"] else 0
        if abs(one[key] - two[key]) > slack:
            out.append((key, one[key], two[key]))
    return out


def test_every_rule_evaluates_without_error_with_two_replicas(world):
    one, two, _, _ = world
    for prom in (two, one):
        health = prom.rule_health()
        assert health and all(h == "ok" for h, _ in health.values()), {r: h for r, h in health.items() if h[0] != "ok"}


def test_each_alert_fires_once_per_subject_with_two_replicas_as_with_one(world):
    one, two, expected, _ = world
    assert set(expected) | NOT_HERE == {r["alert"] for g in yaml.safe_load(
        (ROOT / "deploy/rules/clonewatch.rules.yml").read_text())["groups"] for r in g["rules"] if "alert" in r}
    with_two, with_one = two.alerts(), one.alerts()
    counts, counts_one = subjects(with_two), subjects(with_one)
    print("\nfiring (alerts/subjects): one replica of each | two replicas and a second job")
    for name in sorted(set(counts) | set(counts_one)):
        c1, c2 = counts_one.get(name, Counter()), counts.get(name, Counter())
        print(f"  {name}: {sum(c1.values())}/{len(c1)} | {sum(c2.values())}/{len(c2)}")
    assert {name: set(c) for name, c in counts.items()} == expected
    twice = {name: [s for s, n in c.items() if n > 1] for name, c in counts.items() if max(c.values()) > 1}
    assert not twice, twice
    for a in with_two:
        extra = set(a["labels"]) - {"alertname", "severity", *SUBJECT[a["labels"]["alertname"]], *DETAIL}
        assert not extra, (a["labels"], "a replica's labels leaked into the alert")
    # The copy-only count is of PVCs: one clone, not one per replica and job.
    [copy_only] = [a for a in with_two if a["labels"]["alertname"] == "CloneWatchCopyOnlyStorageClassUsedForClones"]
    assert copy_only["annotations"]["description"].startswith("1 clones target"), copy_only["annotations"]
    assert not settled(lambda: [] if (a := alert_labels(one)) == (b := alert_labels(two)) else [a, b])


def test_every_recorded_fleet_series_is_the_same_with_two_replicas(world):
    one, two, _, totals = world
    records = [r["record"] for g in yaml.safe_load((ROOT / "deploy/rules/clonewatch.fleet.rules.yml").read_text())["groups"]
               for r in g["rules"]]
    assert {dict(key)["__name__"] for key in recorded(one, records)} == set(records)
    assert not settled(lambda: differences(recorded(one, records), recorded(two, records)))
    for name, value in totals.items():       # nothing counted twice
        [result] = two.query(name)["data"]["result"]
        assert float(result["value"][1]) == value, (name, result, value)


# The dashboards fed by the exporter (the hub's board reads the recorded series, evaluated here as a
# cluster's Prometheus records them); the load generator's board is not: it runs once (one replica,
# deploy/base/loadgen), and no loadgen runs here.
NOT_EXPORTER = {"clonewatch-loadgen"}
SUBSTITUTE = {"$__rate_interval": "10s", "$job": ".*", "$namespace": ".*", "$source": ".*", "$cluster": ".*"}
# Values two processes measure each for themselves (how long a refresh took, how old its cache is, how
# many events fell in a window): the same objects, one series each, but not the same numbers.
MEASURED = re.compile(r"_duration_seconds\{|_duration_seconds\)|cache_age_seconds|rate\(|increase\(")


def dashboard_queries() -> dict[str, str]:
    """expr -> where, of every panel query the generated dashboards ask: the Grafana JSON, the console's
    ConfigMaps and the Perses dashboards (each renderer rewrites some)."""
    out: dict[str, str] = {}
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            out.update((t["expr"], f"{board['uid']}: {panel['title']}") for t in panel["targets"])
    for cm in yaml.safe_load_all((ROOT / "deploy/overlays/openshift/console-dashboards.yaml").read_text()):
        board = json.loads(next(iter(cm["data"].values())))
        out.update((t["expr"], f"{board['uid']} (console): {p['title']}")
                   for row in board["rows"] for p in row["panels"] for t in p["targets"])
    for path in sorted((ROOT / "dashboards/perses").glob("*.json")):
        d = json.loads(path.read_text())
        out.update((q["spec"]["plugin"]["spec"]["query"], f"{d['metadata']['name']} (Perses): {p['spec']['display']['name']}")
                   for p in d["spec"]["panels"].values() for q in p["spec"]["queries"])
    return {expr: where for expr, where in out.items() if where.split(" ", 1)[0].rstrip(":") not in NOT_EXPORTER}


def variables() -> list[tuple[str, str, str]]:
    """(selector, label, where) of each variable but `job` (its values are the jobs, two here by design)
    and `cluster` (a label a hub's federation adds)."""
    return [(m.group(1), m.group(2), f"{board['uid']}: ${v['name']}")
            for path in sorted((ROOT / "dashboards").glob("*.json")) if (board := json.loads(path.read_text()))
            for v in board["templating"]["list"] if v["type"] == "query" and v["name"] not in ("job", "cluster")
            and (m := re.fullmatch(r"label_values\((.*), (\w+)\)", v["query"]["query"]))]


def values(prom: Prometheus, selector: str, label: str) -> set[str]:
    return {s[label] for s in prom.api("series", **{"match[]": substitute(selector)})["data"] if label in s}


def substitute(expr: str) -> str:
    for k, v in SUBSTITUTE.items():
        expr = expr.replace(k, v)
    return expr


def answer(prom: Prometheus, expr: str, at: float, per_target: bool) -> dict | str:
    """{labels: value} of the query at `at` (a per-target query's labels without the target's), or
    Prometheus' error."""
    res = prom.api("query", query=substitute(expr), time=at)
    if res.get("status") != "success":
        return res.get("error", "no answer")
    drop = {"job", "instance"} if per_target else set()
    return {tuple(sorted((k, v) for k, v in r["metric"].items() if k not in drop)): float(r["value"][1])
            for r in res["data"]["result"]}


def test_every_dashboard_query_gives_the_same_answer_with_two_replicas(world):
    """Every panel of every exporter board shows the same with two replicas and a second job as with
    one replica: one series per object, sums and counts not doubled, joins not many-to-many. A query
    about each scraped process itself (per_target) shows the same processes' series, one per replica."""
    one, two, _, _ = world
    queries = dashboard_queries()
    per_target = [q.expr for b in BOARDS for p in b.panels() for q in p.queries if q.per_target]
    assert len(queries) > 60, len(queries)

    def problems() -> list:
        out, at = [], time.time() - 2
        for expr, where in queries.items():
            target = any(e in expr for e in per_target)
            a, b = answer(one, expr, at, target), answer(two, expr, at, target)
            if isinstance(a, str) or isinstance(b, str):
                out.append((where, expr, "one replica:", a if isinstance(a, str) else "ok",
                            "two:", b if isinstance(b, str) else "ok"))
            elif not a:
                out.append((where, "no data with one replica", expr))
            elif target or MEASURED.search(expr):
                if set(a) != set(b):
                    out.append((where, expr, sorted(set(a) ^ set(b))[:6]))
            elif a != b:
                out.append((where, expr, {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}))
        for selector, label, where in variables():
            if not values(one, selector, label) or values(one, selector, label) != values(two, selector, label):
                out.append((where, values(one, selector, label), values(two, selector, label)))
        return out
    found = settled(problems)
    assert not found, "\n".join(map(str, found))
