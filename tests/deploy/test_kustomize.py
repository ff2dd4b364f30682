"""deploy/ builds with kustomize, validates against the Kubernetes schemas offline, and keeps its
promises: read-only exporter, loadgen confined to its namespace, restricted pods, probes, limits,
bindings that point at service accounts that exist."""

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# An overlay with optional components added: "overlay+component+...".
TARGETS = ["base", "overlays/kubernetes", "overlays/openshift", "overlays/openshift+components/perses"]
K8S_VERSION = "1.30"


def build(target):
    base, *components = target.split("+")
    if not components:
        return kustomize(ROOT / "deploy" / target)
    with tempfile.TemporaryDirectory() as tmp:     # a component builds only inside a kustomization
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump({
            "resources": [os.path.relpath(ROOT / "deploy" / base, tmp)],
            "components": [os.path.relpath(ROOT / "deploy" / c, tmp) for c in components]}))
        return kustomize(Path(tmp))


def kustomize(path):
    proc = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.fixture(scope="module", params=TARGETS)
def docs(request):
    return request.param, build(request.param)


def test_builtin_kinds_validate_against_the_schemas(docs):
    _, items = docs
    checked = 0
    for d in items:
        if d["apiVersion"].startswith(("monitoring.coreos.com", "ceph.rook.io", "perses.dev")):
            continue        # CRDs: checked below (Rook's CephClient in the openshift overlay test, Perses' in its own)
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 8


CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
                  "StorageClass", "PersistentVolume", "ClusterIssuer", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "PersesGlobalDatasource"}


def test_every_namespaced_object_names_its_namespace(docs):
    """`kubectl apply -k` puts an object without one into the current namespace: a NetworkPolicy there
    would select no pod of ours, and the promise it makes would silently not hold."""
    target, items = docs
    loose = [f"{d['kind']}/{d['metadata']['name']}" for d in items
             if d["kind"] not in CLUSTER_SCOPED and not d["metadata"].get("namespace")]
    assert not loose, f"{target}: namespaced objects without a namespace: {loose}"


def test_servicemonitors_and_rules(docs):
    _, items = docs
    sms = [d for d in items if d["kind"] == "ServiceMonitor"]
    assert {sm["metadata"]["name"] for sm in sms} == {"clonewatch-exporter", "clonewatch-loadgen"}
    services = {(d["metadata"].get("namespace"), d["metadata"]["labels"]["app.kubernetes.io/name"])
                for d in items if d["kind"] == "Service"}
    for sm in sms:
        app = sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        assert (sm["metadata"].get("namespace"), app) in services
        assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    # The exporter's series carry the PVC's `namespace`: without honorLabels prometheus-operator renames
    # it to exported_namespace and writes the exporter's own namespace there, and every per-PVC alert
    # and join would read the wrong one.
    exporter = next(sm for sm in sms if sm["metadata"]["name"] == "clonewatch-exporter")
    assert all(ep.get("honorLabels") is True for ep in exporter["spec"]["endpoints"])
    rules = [d for d in items if d["kind"] == "PrometheusRule"]
    assert len(rules) == 1
    for rule in rules:
        alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
        records = [r["record"] for g in rule["spec"]["groups"] for r in g["rules"] if "record" in r]
        assert "CloneWatchCloneFellBackToCopy" in alerts and ":clonewatch_source_saved_bytes:sum" in records


def service_account(items, deployment):
    """(namespace, name) of the ServiceAccount a Deployment's pods run as."""
    dep = next(d for d in items if d["kind"] == "Deployment" and d["metadata"]["name"] == deployment)
    return dep["metadata"]["namespace"], dep["spec"]["template"]["spec"]["serviceAccountName"]


def bound_roles(items, account):
    """(binding, role) for every binding that names the ServiceAccount; role None when this build does
    not define it (a built-in). Found through the bindings, so a renamed role is still checked."""
    found = []
    for b in (d for d in items if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if not any(s["kind"] == "ServiceAccount" and (s.get("namespace"), s["name"]) == account for s in b["subjects"]):
            continue
        ref = b["roleRef"]
        role_ns = b["metadata"].get("namespace") if ref["kind"] == "Role" else None
        found.append((b, next((d for d in items if d["kind"] == ref["kind"] and d["metadata"]["name"] == ref["name"]
                               and d["metadata"].get("namespace") == role_ns), None)))
    return found


def test_exporter_is_read_only_and_loadgen_is_namespaced(docs):
    target, items = docs
    exporter = bound_roles(items, service_account(items, "clonewatch-exporter"))
    assert exporter, "the exporter's ServiceAccount is bound to no role"
    for binding, role in exporter:
        if role is None:
            # OpenShift, for --web.authorization=kubernetes: token and access reviews, and the
            # service-account signing keys, only.
            assert binding["roleRef"]["name"] in ("system:auth-delegator", "system:service-account-issuer-discovery"), \
                f"{binding['metadata']['name']} binds {binding['roleRef']['name']}, which this build does not define"
        else:
            assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in role["rules"]), role["metadata"]["name"]
    # The read-only role found is the one the exporter watches with, not some other.
    assert any(role and any({"persistentvolumeclaims", "persistentvolumes"} <= set(r.get("resources", ()))
                            and {"list", "watch"} <= set(r["verbs"]) for r in role["rules"]) for _, role in exporter)
    loadgen_roles = [d for d in items if d["kind"] == "Role" and d["metadata"]["name"] == "clonewatch-loadgen"]
    assert len(loadgen_roles) == 1
    lg = next(d for d in items if d["kind"] == "Deployment" and d["metadata"]["name"] == "clonewatch-loadgen")
    assert loadgen_roles[0]["metadata"]["namespace"] == lg["metadata"]["namespace"]
    loadgen = bound_roles(items, service_account(items, "clonewatch-loadgen"))
    assert all(b["kind"] == "RoleBinding" and role is not None for b, role in loadgen), "loadgen: namespaced roles of ours only"
    assert [role for b, role in loadgen if b["metadata"]["namespace"] == lg["metadata"]["namespace"]] == loadgen_roles
    # Elsewhere only the golden images' namespace, and there only reading a PVC and cloning from it.
    golden = [role for b, role in loadgen if b["metadata"]["namespace"] != lg["metadata"]["namespace"]]
    assert len(golden) == (0 if target == "base" else 1), [r["metadata"]["name"] for r in golden]
    for role in golden:
        assert {(tuple(r["resources"]), tuple(r["verbs"])) for r in role["rules"]} == {
            (("persistentvolumeclaims",), ("get",)), (("datavolumes/source",), ("create",))}
    scenario = yaml.safe_load(next(d for d in items if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(
        "clonewatch-loadgen-scenario"))["data"]["scenario.yaml"])
    assert scenario["kubernetes"]["namespace"] == lg["metadata"]["namespace"], "loadgen may only create in its namespace"
    assert not any(d["kind"] == "ClusterRoleBinding" and "loadgen" in d["metadata"]["name"] for d in items)


def test_bindings_point_at_service_accounts_that_exist(docs):
    _, items = docs
    accounts = {(d["metadata"].get("namespace"), d["metadata"]["name"]) for d in items if d["kind"] == "ServiceAccount"}
    accounts.add(("openshift-monitoring", "prometheus-k8s"))        # platform monitoring's Prometheus
    bindings = [d for d in items if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert len(bindings) >= 2       # the exporter's and the loadgen's, at least
    for d in bindings:
        for s in d["subjects"]:
            assert (s["namespace"], s["name"]) in accounts, (d["metadata"]["name"], s)


def test_pods_are_restricted_with_probes_and_limits(docs):
    _, items = docs
    deployments = [d for d in items if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"clonewatch-exporter", "clonewatch-loadgen"}
    for dep in deployments:
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"] and sc["runAsNonRoot"] is True
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        main = pod["containers"][0]
        assert main["readinessProbe"]["httpGet"]["path"] in ("/readyz", "/healthz")
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_openshift_overlay_reads_odf_credentials_and_ships_console_dashboards():
    items = build("overlays/openshift")
    exporter = next(d for d in items if d["kind"] == "Deployment" and d["metadata"]["name"] == "clonewatch-exporter")
    assert exporter["metadata"]["namespace"] == "openshift-storage"
    init = exporter["spec"]["template"]["spec"]["initContainers"][0]
    refs = {e["valueFrom"].get("secretKeyRef", e["valueFrom"].get("configMapKeyRef"))["name"] for e in init["env"]}
    assert refs == {"rook-ceph-client-clonewatch", "rook-ceph-mon-endpoints"}, "its own client, not client.admin"
    client = next(d for d in items if d["kind"] == "CephClient")
    assert client["metadata"] == {"name": "clonewatch", "namespace": "openshift-storage"}
    assert client["spec"]["caps"] == {"mon": "profile rbd", "osd": "profile rbd-read-only"}
    env = {e["name"]: e.get("value") for e in exporter["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CLONEWATCH_CEPH_ID"] == "clonewatch"
    assert "[client.clonewatch]" in init["command"][-1]
    ceph = next(v for v in exporter["spec"]["template"]["spec"]["volumes"] if v["name"] == "ceph")
    assert "secret" not in ceph and ceph["emptyDir"]["medium"] == "Memory"
    boards = [d for d in items if d["kind"] == "ConfigMap" and d["metadata"]["namespace"] == "openshift-config-managed"]
    assert len(boards) == 4 and all(d["metadata"]["labels"]["console.openshift.io/dashboard"] == "true" for d in boards)


# perses-operator config/crd/bases/perses.dev_persesdashboards.yaml, v1alpha2 (served and stored; v1alpha1
# is deprecated): what the apiserver itself checks of spec.config; the rest is checked by Perses'
# own packages (tests/deploy/test_perses.py).
PERSES_REQUIRED = ("duration", "layouts", "panels")
PERSES_DURATION = re.compile(r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$")


def key(d):
    return d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]


def test_the_perses_component_adds_only_the_dashboards_and_their_default_datasource():
    plain = {key(d): d for d in build("overlays/openshift")}
    items = {key(d): d for d in build("overlays/openshift+components/perses")}
    assert {k: d for k, d in items.items() if k in plain} == plain, "the component changes nothing else"
    added = [d for k, d in items.items() if k not in plain]
    assert sorted(d["kind"] for d in added) == ["PersesDashboard"] * 4 + ["PersesDatasource"]
    assert ("Namespace", None, "clonewatch") in plain
    for d in added:
        assert d["apiVersion"] == "perses.dev/v1alpha2" and d["metadata"]["namespace"] == "clonewatch"
    [source] = [d for d in added if d["kind"] == "PersesDatasource"]
    assert source["spec"]["config"]["default"] is True
    # The operator keeps the proxy's token in "<datasource name>-secret".
    assert source["spec"]["config"]["plugin"]["spec"]["proxy"]["spec"]["secret"] == source["metadata"]["name"] + "-secret"
    boards = {d["metadata"]["name"]: d["spec"]["config"] for d in added if d["kind"] == "PersesDashboard"}
    consoles = [d["metadata"]["name"] for d in plain.values() if d["kind"] == "ConfigMap"
                and d["metadata"]["namespace"] == "openshift-config-managed"]
    assert sorted(boards) == sorted(consoles), "the same boards as the console's"
    for name, config in boards.items():
        assert all(k in config for k in PERSES_REQUIRED), name
        assert PERSES_DURATION.match(config["duration"]) and PERSES_DURATION.match(config["refreshInterval"])
        assert "datasources" not in config, "the console refuses a dashboard's own datasources"
        assert config == json.loads((ROOT / "dashboards/perses" / f"{name}.json").read_text())["spec"]


def test_every_container_runs_the_released_image(docs):
    """Init containers too: an image a patch adds is not reached by the base's images: list."""
    _, items = docs
    deployments = [d for d in items if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"clonewatch-exporter", "clonewatch-loadgen"}
    for dep in deployments:
        pod = dep["spec"]["template"]["spec"]
        for c in pod["containers"] + pod.get("initContainers", []):
            assert c["image"] == "quay.io/clonewatch/clonewatch:0.1.0", (dep["metadata"]["name"], c["name"], c["image"])


def serves_tls(by, name, container):
    """The daemon `name` reads a web config that points at its mounted serving certificate, is probed
    over HTTPS, and its ServiceMonitor scrapes HTTPS for the Service's DNS name. Returns the endpoint."""
    pod = by["Deployment", name]["spec"]["template"]["spec"]
    main = next(c for c in pod["containers"] if c["name"] == container)
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in main.get("env", [])}
    flag = next((a.split("=", 1)[1] for a in main.get("args", []) if a.startswith("--web.config.file=")), None)
    assert (flag or env.get("CLONEWATCH_WEB_CONFIG_FILE")) == mounts["web-config"] + "/web.yml", name
    config_map = next(v for v in pod["volumes"] if v["name"] == "web-config")["configMap"]["name"]
    web = yaml.safe_load(by["ConfigMap", config_map]["data"]["web.yml"])
    assert web["tls_server_config"]["cert_file"] == mounts["serving-cert"] + "/tls.crt"
    assert web["tls_server_config"]["key_file"] == mounts["serving-cert"] + "/tls.key"
    probes = [p for p in ("readinessProbe", "livenessProbe", "startupProbe") if p in main]
    assert probes and all(main[p]["httpGet"]["scheme"] == "HTTPS" for p in probes), name
    svc = by["Service", name]
    ep = by["ServiceMonitor", name]["spec"]["endpoints"][0]
    assert ep["scheme"] == "https"
    assert ep["tlsConfig"]["serverName"] == f"{name}.{svc['metadata'].get('namespace', 'clonewatch')}.svc"
    return ep, svc, next(v for v in pod["volumes"] if v["name"] == "serving-cert")["secret"]["secretName"]


def test_openshift_serves_the_loadgens_metrics_over_service_ca_tls_to_user_workload_monitoring():
    by = {(d["kind"], d["metadata"]["name"]): d for d in build("overlays/openshift")}
    ep, svc, secret = serves_tls(by, "clonewatch-loadgen", "loadgen")
    assert svc["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-secret-name"] == secret
    bundle = ep["tlsConfig"]["ca"]["configMap"]
    assert by["ConfigMap", bundle["name"]]["metadata"]["annotations"]["service.beta.openshift.io/inject-cabundle"] == "true"
    assert bundle["key"] == "service-ca.crt"
    policy = by["NetworkPolicy", "clonewatch-loadgen-scrapes"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "clonewatch-loadgen"}
    assert policy["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-user-workload-monitoring"}}}]


def test_openshift_serves_metrics_over_service_ca_tls_to_prometheus_with_rbac():
    items = build("overlays/openshift")
    by = {(d["kind"], d["metadata"]["name"]): d for d in items}
    ep, svc, secret = serves_tls(by, "clonewatch-exporter", "exporter")
    assert svc["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-secret-name"] == secret
    main = by["Deployment", "clonewatch-exporter"]["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in main["env"]}["CLONEWATCH_WEB_AUTHORIZATION"] == "kubernetes"
    assert ep["bearerTokenFile"].endswith("serviceaccount/token")
    assert ep["tlsConfig"]["caFile"].endswith("serving-certs-ca-bundle/service-ca.crt")
    reader = by["ClusterRole", "clonewatch-metrics-reader"]["rules"]
    assert reader == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    assert by["ClusterRoleBinding", "clonewatch-metrics-reader"]["subjects"][0]["name"] == "prometheus-k8s"


def test_kubernetes_admits_scrapes_only_from_monitoring_and_cert_manager_gives_tls(tmp_path):
    items = build("overlays/kubernetes")
    policies = {d["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: d["spec"]
                for d in items if d["kind"] == "NetworkPolicy"}
    assert set(policies) == {"clonewatch-exporter", "clonewatch-loadgen"}
    for policy in policies.values():
        assert policy["ingress"][0]["from"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    # The optional cert-manager component, on top of that overlay.
    overlay = ROOT / "deploy" / "overlays" / f".test-{tmp_path.name}"
    overlay.mkdir()
    try:
        (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["../kubernetes"], "components": ["../../components/cert-manager"]}))
        items = build(f"overlays/{overlay.name}")
    finally:
        (overlay / "kustomization.yaml").unlink()
        overlay.rmdir()
    by = {(d["kind"], d["metadata"]["name"]): d for d in items}
    for name, container in (("clonewatch-exporter", "exporter"), ("clonewatch-loadgen", "loadgen")):
        cert = by["Certificate", name]
        ep, _, secret = serves_tls(by, name, container)
        assert secret == cert["spec"]["secretName"] == ep["tlsConfig"]["ca"]["secret"]["name"]
        if name == "clonewatch-exporter":
            assert ep.get("honorLabels") is True, "the component's endpoint replaces the base's: keep honorLabels"
        assert ep["tlsConfig"]["serverName"] in cert["spec"]["dnsNames"]
        assert cert["spec"]["privateKey"] == {"rotationPolicy": "Always", "algorithm": "ECDSA", "size": 256}


def test_shipped_web_configs_are_valid(tmp_path):
    """The web.yml files deploy/ ships load with the exporter's own parser (certificates stubbed in)."""
    from exporter.http.webconfig import load
    from tests.support.https import make_tls
    cert, key = make_tls(tmp_path)
    docs = [yaml.safe_load(d["data"]["web.yml"]) for d in build("overlays/openshift")
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] in ("clonewatch-exporter-web", "clonewatch-loadgen-web")]
    docs.append(yaml.safe_load((ROOT / "deploy/components/cert-manager/web.yml").read_text()))
    assert len(docs) == 3
    for doc in docs:
        doc["tls_server_config"] |= {"cert_file": str(cert), "key_file": str(key)}
        (tmp_path / "web.yml").write_text(yaml.safe_dump(doc))
        assert load(str(tmp_path / "web.yml")).tls is not None


def test_kubernetes_authorization_may_review_tokens_and_read_the_signing_keys():
    """Where the exporter runs with --web.authorization=kubernetes (OpenShift), it may review tokens
    and access and read the service-account keys it tells minted tokens from made-up ones with."""
    for target in ("overlays/openshift", "overlays/kubernetes"):
        items = build(target)
        exporter = next(d for d in items if d["kind"] == "Deployment" and d["metadata"]["name"] == "clonewatch-exporter")
        container = exporter["spec"]["template"]["spec"]["containers"][0]
        flags = " ".join(container.get("args", []) + container.get("command", []))
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        kube_authz = "--web.authorization=kubernetes" in flags or env.get("CLONEWATCH_WEB_AUTHORIZATION") == "kubernetes"
        roles = {d["roleRef"]["name"] for d in items if d["kind"] == "ClusterRoleBinding"
                 and any(s["name"] == "clonewatch-exporter" for s in d["subjects"])}
        wanted = {"system:auth-delegator", "system:service-account-issuer-discovery"}
        assert (wanted <= roles) == kube_authz, (target, roles, kube_authz)
