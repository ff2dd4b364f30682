"""clonewatch's dashboards as code: model.py says what a dashboard is, boards/ defines each one once,
render/ draws them for Grafana (dashboards/*.json), the OpenShift console's legacy dashboards page
(deploy/overlays/openshift/console-dashboards.yaml) and Perses (dashboards/perses/*.json and
deploy/components/perses/). scripts/gen-manifests.py writes the files."""
