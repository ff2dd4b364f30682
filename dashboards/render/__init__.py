"""One Board in, one renderer's dashboard out: grafana.py, console.py (the OpenShift console's legacy page), perses.py."""
