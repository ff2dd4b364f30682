"""Raw JSON requests through the official `kubernetes` client.

We let the client do what it is good at (kubeconfig / in-cluster auth, TLS, token refresh) and
parse the bodies ourselves: its pydantic models reject a whole list when one object is odd, and
model deserialisation costs ~6x json.loads at 10k PVCs.
"""

import json
from typing import Any

import kubernetes
from kubernetes import client as k8s_client


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def load_api_client(kubeconfig: str | None, context: str | None = None) -> k8s_client.ApiClient:
    """Kubeconfig from the flag or KUBECONFIG/~/.kube/config, else the in-cluster service account."""
    configuration = k8s_client.Configuration()
    config: Any = kubernetes.config      # the client ships no types
    try:
        config.load_kube_config(config_file=kubeconfig, context=context,
                                           client_configuration=configuration)
    except Exception:
        if kubeconfig:
            raise
        config.load_incluster_config(client_configuration=configuration)
    return k8s_client.ApiClient(configuration)


def open_request(api: k8s_client.ApiClient, path: str, query: list[tuple[str, Any]],
                 timeout: tuple[float, float]) -> Any:
    """GET path; returns the unread urllib3 response (caller streams or reads it)."""
    method, url, headers, body, post = api.param_serialize(
        method="GET", resource_path=path, query_params=query,
        header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
    rest = api.call_api(method, url, header_params=headers, body=body, post_params=post,
                        _request_timeout=timeout)
    return rest.response


def get_json(api: k8s_client.ApiClient, path: str, query: list[tuple[str, Any]],
             timeout: tuple[float, float]) -> dict[str, Any]:
    resp = open_request(api, path, query, timeout)
    try:
        data = resp.data
    finally:
        resp.release_conn()
    if resp.status >= 300:
        raise KubeError(resp.status, _status_message(data))
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise KubeError(resp.status, f"response is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise KubeError(resp.status, "response is not a JSON object")
    return doc


def _status_message(data: bytes) -> str:
    try:
        doc = json.loads(data)
        if isinstance(doc, dict) and doc.get("message"):
            return str(doc["message"])[:300]
    except ValueError:
        pass
    return data[:300].decode("utf-8", "replace")


def request_json(api: k8s_client.ApiClient, method: str, path: str, body: Any = None,
                 query: list[tuple[str, Any]] | None = None, timeout: tuple[float, float] = (10, 60),
                 content_type: str = "application/json") -> tuple[int, Any]:
    """Any verb; returns (status, parsed JSON body or None). Never raises for HTTP errors."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    m, url, headers, body, post = api.param_serialize(
        method=method, resource_path=path, query_params=query or [], header_params=headers, body=body,
        auth_settings=["BearerToken"])
    rest = api.call_api(m, url, header_params=headers, body=body, post_params=post, _request_timeout=timeout)
    resp = rest.response
    try:
        data = resp.data
    finally:
        resp.release_conn()
    try:
        return resp.status, json.loads(data) if data else None
    except ValueError:
        return resp.status, None
