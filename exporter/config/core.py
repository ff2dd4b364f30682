"""The exporter's own options (web, log, Kubernetes, rebuild); each backend declares its own next to it.

Here, below every layer that reads them: the CLI validates them, the runtime starts from them.
"""

from dataclasses import dataclass

from .logs import FORMATS, LEVELS
from .settings import option


@dataclass(frozen=True)
class CoreOptions:
    web_listen_address: str = option("web.listen-address", ":9753", "address to serve /metrics, /healthz, /readyz on")
    web_config_file: str = option("web.config.file", "", "TLS and basic auth for /metrics, in the Prometheus "
                                  "exporter-toolkit web config format (README: Securing /metrics)")
    web_authorization: str = option("web.authorization", "none", "none, or kubernetes: a bearer token allowed to "
                                    "get /metrics by TokenReview + SubjectAccessReview")
    log_level: str = option("log.level", "info", "one of " + ", ".join(LEVELS))
    log_format: str = option("log.format", "json", "one of " + ", ".join(FORMATS))
    kubernetes_enabled: bool = option("kubernetes.enabled", True,
                                      "watch Kubernetes; false = native mode, backend volumes and their parent chains only")
    kubeconfig: str = option("kubeconfig", "", "kubeconfig file (else $KUBECONFIG or ~/.kube/config, else in-cluster)")
    kubernetes_context: str = option("kubernetes.context", "", "kubeconfig context to use")
    kubernetes_namespaces: tuple[str, ...] = option("kubernetes.namespaces", (),
                                                    "only watch these namespaces (comma-separated; default all)")
    kubernetes_watch_timeout: int = option("kubernetes.watch-timeout", 300, "seconds a watch request asks the API "
                                           "server to stay open", positive=True, unit="seconds")
    kubernetes_read_timeout: float = option("kubernetes.read-timeout", 330.0, "seconds without a byte before a watch "
                                            "is reopened", positive=True, unit="seconds")
    kubernetes_backoff_max: float = option("kubernetes.backoff-max", 30.0, "longest wait between retries after API errors",
                                           positive=True, unit="seconds")
    kubernetes_absent_recheck: float = option("kubernetes.absent-recheck", 300.0, "seconds between looks for a CRD "
                                              "that is not installed", positive=True, unit="seconds")
    unclaimed_temp_age: float = option("unclaimed.temp-age", 3600.0, "seconds after which a driver's temporary clone "
                                       "image with no clone below it (an interrupted PVC-PVC clone) is reported as "
                                       "stale-temp rather than clone-in-progress", positive=True, unit="seconds")
    rebuild_debounce: float = option("rebuild.debounce", 0.2, "seconds to gather changes before the metrics are "
                                     "re-rendered", unit="seconds")
