"""Test doubles and helpers: a kmock Kubernetes API on its own thread, the local Ceph cluster,
and the exporter run as a real process."""
