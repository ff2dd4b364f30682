"""The labels that name each object the exporter reports on, and one series per object.

Two exporter replicas (an HA Deployment), or two Prometheus jobs scraping one exporter, report every
object once each: the same labels but `job`, `instance` and what prometheus-operator adds (pod,
service, endpoint, container). A query folds them with `max by (<the object's labels>)` before it
sums, counts or draws, as deploy/rules/ do; `by`, not `without (instance, pod, ...)`, because which
scrape labels differ depends on how the exporter is scraped. Two series of one object are joined
within one scrape target, `on (job, instance, <the object's labels>)`: joined on the object alone,
each side holds a series per replica and the match is many-to-many, which Prometheus refuses.
tests/e2e/test_two_replicas.py evaluates every dashboard query with one replica and with two.
"""

FAMILY = "source_namespace, source_name, backend"
PVC = "namespace, persistentvolumeclaim"
VM = "namespace, virtualmachine"
TARGET = "backend, target"
FLASHCOPY = "backend, target, volume"
WATCH = "resource, namespace"


def once(labels: str, expr: str) -> str:
    """One series per object: every replica's series of it folded into one."""
    return f"max by ({labels}) ({expr})"


def worst(labels: str, expr: str) -> str:
    """One series per object, the lowest of the replicas': a health value (up, healthy) is 0 when any
    replica's is, as the alerts read it; the other's good answer must not hide it."""
    return f"min by ({labels}) ({expr})"


def within(labels: str) -> str:
    """The `on (...)` of a join of two series of one object, from one scrape target."""
    return f"on (job, instance, {labels})"


def named(expr: str) -> str:
    """The series with a `family` label to name them by: `namespace/name`, or `name` alone for a native
    family (a qcow2 path, an array's volume), which has no namespace: not `/fs1/...` or `//var/...`."""
    joined = f'label_join({expr}, "family", "/", "source_namespace", "source_name")'
    return f'label_replace({joined}, "family", "$1", "family", "/(.*)")'
