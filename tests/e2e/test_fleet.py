"""A fleet of two clusters and a hub, as Prometheus federation runs it: two "cluster" Prometheus
servers (external_labels cluster=a|b), each scraping its own exporter and evaluating the recording
rules, and a hub federating only the recorded series (docs/fleet.md's match[]). Leaf a: the e2e
scenario on real Ceph; leaf b: a small real family plus 3,000 clones stuck in flight."""

import json
import time

import pytest
import yaml

from tests.e2e import scenario
from tests.support.ceph import Pool, ceph_conf
from tests.support.cephcsi import CephCsiJournal
from tests.support.kube import KubeAPI
from tests.support.objects import ODF_RBD, clone_annotations, datavolume, pv_rbd, pvc, storageclass, storageprofile
from tests.support.process import ROOT, ExporterProcess, pick
from tests.support.prometheus import Prometheus

MATCH = '{__name__=~".*:clonewatch_.*:.*"}'        # docs/fleet.md: the recorded series only
RULES = [str(ROOT / "deploy/rules/clonewatch.rules.yml"), str(ROOT / "deploy/rules/clonewatch.fleet.rules.yml")]
STUCK_B = 3000


def recorded_names() -> list[str]:
    doc = yaml.safe_load((ROOT / "deploy/rules/clonewatch.fleet.rules.yml").read_text())
    return [r["record"] for g in doc["groups"] for r in g["rules"]]


def _leaf_b_objects(pool_name: str) -> tuple[list[dict], list[dict], list[dict]]:
    objs = [storageclass(scenario.RBD_SC, ODF_RBD), storageprofile(scenario.RBD_SC, "csi-clone"),
            pv_rbd("pv-g", pool_name, "g-img"), pvc("img", "g", scenario.RBD_SC, volume="pv-g")]
    ann = clone_annotations("csi-clone")
    for vm in ("b-1", "b-2"):
        objs += [datavolume("vms", vm, source={"pvc": {"namespace": "img", "name": "g"}}, annotations=ann),
                 pv_rbd(f"pv-{vm}", pool_name, f"{vm}-img"),
                 pvc("vms", vm, scenario.RBD_SC, volume=f"pv-{vm}", owner_dv=vm, annotations=ann)]
    dvs = [datavolume("vms", f"stuck-{i}", source={"pvc": {"namespace": "img", "name": "g"}},
                      phase="CSICloneInProgress", created="2026-01-01T00:00:00Z") for i in range(STUCK_B)]
    for dv in dvs:
        dv["metadata"]["namespace"] = "vms"
    claims = [pvc("vms", f"stuck-{i}", scenario.RBD_SC, owner_dv=f"stuck-{i}") for i in range(STUCK_B)]
    return objs, dvs, claims


@pytest.fixture(scope="module")
def fleet(kube, pool, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    undo = []
    try:
        # Leaf a: the e2e scenario.
        scenario.build_pool(pool)
        # ... with a ceph-csi volume whose PV is gone (the hub's space-no-PVC-owns panel).
        CephCsiJournal(pool).new_volume("pvc-leaked", 4)
        for obj in scenario.kubernetes_objects(pool.name):
            kube.create(obj)
        exp_a = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig-a')}", f"--ceph.conf={pool.conf}",
                                 "--rbd.refresh-interval=1"], tmp / "exporter-a.log")
        undo.append(exp_a.stop)
        # Leaf b: its own API server and pool.
        kube_b = KubeAPI()
        undo.append(kube_b.close)
        pool_b = Pool(ceph_conf(), prefix="fleetb")
        undo.append(pool_b.remove)
        pool_b.golden("g-img", 16)
        for vm in ("b-1", "b-2"):
            pool_b.clone("g-img", f"{vm}-img")
            pool_b.write(f"{vm}-img", 4)
        objs, dvs, claims = _leaf_b_objects(pool_b.name)
        for obj in objs:
            kube_b.create(obj)
        kube_b.burst("cdi.kubevirt.io/v1beta1/datavolumes", dvs)
        kube_b.burst("v1/persistentvolumeclaims", claims)
        exp_b = ExporterProcess([f"--kubeconfig={kube_b.write_kubeconfig(tmp / 'kubeconfig-b')}", f"--ceph.conf={pool.conf}",
                                 "--rbd.refresh-interval=1"], tmp / "exporter-b.log")
        undo.append(exp_b.stop)
        exp_a.wait_ready()
        exp_b.wait_ready()
        exp_a.wait_for(lambda s: len(pick(s, "clonewatch_source_efficiency_ratio")) == 3, what="a: families measured")
        exp_b.wait_for(lambda s: len(pick(s, "clonewatch_pvc_clone_status_info")) == STUCK_B
                       and pick(s, "clonewatch_source_efficiency_ratio"), what="b: clones and family")
        leaves = {}
        for name, exp in (("a", exp_a), ("b", exp_b)):
            leaves[name] = Prometheus(tmp / f"prom-{name}", {"clonewatch-exporter": [f"127.0.0.1:{exp.port}"]}, RULES,
                                      external_labels={"cluster": name})
            undo.append(leaves[name].stop)
        hub = Prometheus(tmp / "prom-hub", {}, [], scrape_configs=[
            {"job_name": f"federate-{name}", "honor_labels": True, "honor_timestamps": False, "metrics_path": "/federate",
             "params": {"match[]": [MATCH]}, "static_configs": [{"targets": [f"127.0.0.1:{leaf.port}"]}]}
            for name, leaf in leaves.items()])
        undo.append(hub.stop)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = hub.query('count by (cluster) (:clonewatch_source_saved_bytes:sum)')["data"]["result"]
            if len(got) == 2:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the hub never saw both clusters")
        # A few more federation rounds, until the hub holds every series each leaf has recorded (past
        # the deadline the tests say which are missing).
        deadline = time.monotonic() + 60
        while unfederated(leaves, hub) and time.monotonic() < deadline:
            time.sleep(0.5)
        yield leaves, hub
    finally:
        for step in reversed(undo):
            try:
                step()
            except Exception:     # undo the rest regardless
                pass


def values(prom: Prometheus, expr: str, drop=("cluster",)) -> dict:
    """{labels: value}; the name and the hub's scrape labels (job, instance) left out."""
    res = prom.query(expr)
    assert res["status"] == "success", res
    gone = {"__name__", "job", "instance", *drop}
    return {tuple(sorted((k, v) for k, v in r["metric"].items() if k not in gone)): float(r["value"][1])
            for r in res["data"]["result"]}


def unfederated(leaves: dict[str, Prometheus], hub: Prometheus) -> list[tuple[str, str]]:
    """(recorded series, cluster) whose label sets at the hub are not yet the leaf's own."""
    return [(name, cluster) for name in recorded_names() for cluster, leaf in leaves.items()
            if values(leaf, name).keys() != values(hub, f'{name}{{cluster="{cluster}"}}').keys()]


def test_every_recorded_series_at_the_hub_equals_each_clusters_own(fleet):
    leaves, hub = fleet
    for name in recorded_names():
        for cluster, leaf in leaves.items():
            own = values(leaf, name)
            at_hub = values(hub, f'{name}{{cluster="{cluster}"}}')
            assert own.keys() == at_hub.keys(), (name, cluster, own, at_hub)
            for key, v in own.items():
                slack = 5 if "cache_age" in name else 1e-9 * max(1.0, abs(v))     # an age moves with the clock
                assert abs(at_hub[key] - v) <= slack, (name, cluster, key, v, at_hub[key])
    # What the leaves hold that matters: leaf a's fallbacks and stuck clone, leaf b's 3,000 stuck.
    assert values(hub, ':clonewatch_pvc_clone_fallbacks:count', drop=()) == {(("cluster", "a"),): 2,
                                                                           (("cluster", "b"),): 0}
    assert values(hub, ':clonewatch_pvc_clones_stuck:count', drop=()) == {(("cluster", "a"),): 1,
                                                                        (("cluster", "b"),): STUCK_B}


def test_fleet_totals_are_the_sum_of_the_clusters(fleet):
    leaves, hub = fleet
    for name in (":clonewatch_source_saved_bytes:sum", ":clonewatch_source_consumed_bytes:sum",
                 ":clonewatch_pvc_clones:count"):
        total = sum(v for leaf in leaves.values() for v in values(leaf, name).values())
        [hub_total] = values(hub, f"sum({name})").values()
        assert hub_total == pytest.approx(total), name
    saved = sum(v for leaf in leaves.values() for v in values(leaf, ":clonewatch_source_saved_bytes:sum").values())
    full = sum(v for leaf in leaves.values() for v in values(leaf, ":clonewatch_source_full_copy_bytes:sum").values())
    [eff] = values(hub, "sum(:clonewatch_source_saved_bytes:sum) / sum(:clonewatch_source_full_copy_bytes:sum)").values()
    assert eff == pytest.approx(saved / full)


def test_the_hub_holds_about_one_percent_of_the_series(fleet, record_property):
    leaves, hub = fleet
    leaf_series = sum(next(iter(values(leaf, 'count({__name__=~".+"})').values())) for leaf in leaves.values())
    hub_series = next(iter(values(hub, 'count({__name__=~".*:clonewatch_.*:.*"})').values()))
    ratio = hub_series / leaf_series
    record_property("series", {"leaves": leaf_series, "hub": hub_series, "ratio": ratio})
    print(f"series: leaves {leaf_series:.0f}, hub {hub_series:.0f} ({ratio:.2%})")
    assert ratio <= 0.01, (leaf_series, hub_series)


def test_every_hub_dashboard_query_and_variable_answers_at_the_hub(fleet):
    _, hub = fleet
    board = json.loads((ROOT / "dashboards" / "clonewatch-clusters.json").read_text())
    [var] = [v for v in board["templating"]["list"] if v["name"] == "cluster"]
    metric, label = var["query"]["query"].removeprefix("label_values(").removesuffix(")").split(", ")
    res = hub.api("series", **{"match[]": metric})
    assert sorted({s[label] for s in res["data"]}) == ["a", "b"]
    empty = []
    for panel in board["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$cluster", "a|b")
            res = hub.query(expr)
            assert res["status"] == "success", (panel["title"], res)
            if not res["data"]["result"]:
                empty.append(panel["title"])
    # Only "Backend targets down" may be empty: no backend is down in this fleet.
    assert empty == ["Backend targets down"], empty


def test_a_cluster_that_goes_away_is_missing_not_zero(fleet):
    leaves, hub = fleet
    leaves["b"].stop()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = values(hub, ":clonewatch_source_saved_bytes:sum", drop=())
        if list(left) == [(("cluster", "a"),)]:
            break
        time.sleep(0.5)
    assert list(left) == [(("cluster", "a"),)], left
    res = hub.query('up{job=~"federate-.*"}')["data"]["result"]
    assert {r["metric"]["job"]: r["value"][1] for r in res} == {"federate-a": "1", "federate-b": "0"}
    assert not values(hub, ':clonewatch_pvc_clones:count{cluster="b"}'), \
        "no made-up zeros for a cluster that cannot be asked"
