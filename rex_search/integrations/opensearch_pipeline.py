"""What an OpenSearch cluster needs to call rex-search's reranker from its own search pipelines.

Steps (bodies in ``integrations/opensearch/*.json``):
1. ``PUT /_cluster/settings``: trust the rex-search service endpoint for ml-commons connectors,
   *appended* to the endpoints the cluster already trusts; and, when the service has a private
   or loopback address, ``plugins.ml_commons.connector.private_ip_enabled`` (ml-commons refuses
   connectors to such addresses otherwise);
2. a remote connector to ``POST {service}/rerank``, using ml-commons' Cohere rerank pre/post-
   processing (our /rerank speaks that shape: ``{query, documents, top_n}`` ->
   ``{results: [{index, relevance_score}]}``);
3. a remote model over the connector, deployed;
4. ``PUT /_search/pipeline/{name}``: a search pipeline whose ``rerank`` response processor
   (``ml_opensearch`` type) sends each hit's ``rerank_text`` -- one field the backend indexes in
   the RexReranker product format (``Title: ...\\nDescription: ...``), which /rerank reads back
   as title and description -- to that model.
Then search with ``?search_pipeline={name}`` and ``"ext": {"rerank": {"query_context":
{"query_text": "..."}}}``.

Installing again finds the connector and model by name and updates them (one of each per
pipeline name, never a second); `uninstall` removes what `install` made, including its trusted
endpoint entry.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from rex_search.errors import BackendError, ConfigError

TRUSTED = "plugins.ml_commons.trusted_connector_endpoints_regex"
PRIVATE_IP = "plugins.ml_commons.connector.private_ip_enabled"
RERANK_FIELD = "rerank_text"


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    body: dict[str, Any] | None


def _template(name: str, values: dict[str, str]) -> dict[str, Any]:
    text = resources.files("rex_search.integrations").joinpath(f"opensearch/{name}").read_text()
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return json.loads(text)


def service_base(service_url: str) -> str:
    if not re.fullmatch(r"https?://[\w.-]+(:\d+)?", service_url.rstrip("/")):
        raise ConfigError(f"--service must be http(s)://host[:port], got {service_url!r}")
    return service_url.rstrip("/")


def trusted_regex(service_url: str) -> str:
    return "^" + re.escape(service_base(service_url)) + "/.*$"


def is_private(service_url: str) -> bool:
    """Whether the service's host is (or resolves to) a private, loopback or link-local
    address: ml-commons refuses such connector endpoints unless told otherwise."""
    host = urlsplit(service_base(service_url)).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:  # not resolvable here; the cluster may resolve it: judge by the name
        return host == "localhost" or "." not in host
    ips = [ipaddress.ip_address(str(a).split("%")[0]) for a in addresses]
    return any(ip.is_private or ip.is_loopback for ip in ips)


def names(pipeline: str) -> tuple[str, str]:
    """(connector name, model name) for one pipeline: how a re-install finds them."""
    return f"rex-search reranker ({pipeline})", f"rex-search-reranker-{pipeline}"


def plan(service_url: str, pipeline: str = "rex-rerank", connector_id: str = "<connector_id>",
         model_id: str = "<model_id>", trusted: list[str] | None = None) -> list[Step]:
    """The requests of a first install, in order; ids unknown until the cluster answers are
    placeholders, and ``trusted`` is what the cluster trusts already (read it first)."""
    service = service_base(service_url)
    regex = trusted_regex(service)
    settings: dict[str, Any] = {TRUSTED: [*(trusted or []), *([] if regex in (trusted or [])
                                                              else [regex])],
                                "plugins.ml_commons.only_run_on_ml_node": False}
    if is_private(service):
        settings[PRIVATE_IP] = True
    connector_name, model_name = names(pipeline)
    return [
        Step("PUT", "/_cluster/settings", {"persistent": settings}),
        Step("POST", "/_plugins/_ml/connectors/_create",
             _template("connector.json", {"REX_SERVICE_ENDPOINT": service,
                                          "CONNECTOR_NAME": connector_name})),
        Step("POST", "/_plugins/_ml/models/_register",
             _template("model.json", {"CONNECTOR_ID": connector_id, "MODEL_NAME": model_name})),
        Step("POST", f"/_plugins/_ml/models/{model_id}/_deploy", None),
        Step("PUT", f"/_search/pipeline/{pipeline}", pipeline_body(model_id)),
    ]


def pipeline_body(model_id: str) -> dict[str, Any]:
    """A search pipeline whose rerank processor sends ``rerank_text`` to ``model_id``."""
    return _template("search-pipeline.json", {"MODEL_ID": model_id,
                                              "RERANK_FIELD": RERANK_FIELD})


# Model states in which ml-commons refuses to change the connector or delete the model.
_LIVE_STATES = ("DEPLOYED", "DEPLOYING", "PARTIALLY_DEPLOYED")


class MlCommons:
    """The few ml-commons calls install/uninstall make, with errors that say which step."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def call(self, what: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            return self.client.transport.perform_request(method, path, body=body) or {}
        except Exception as exc:  # noqa: BLE001 -- the client raises many types
            raise BackendError(f"OpenSearch refused to {what}: {exc}") from None

    def trusted(self) -> list[str]:
        settings = self.call("read the cluster settings", "GET",
                             "/_cluster/settings?include_defaults=true&flat_settings=true")
        for scope in ("transient", "persistent", "defaults"):
            if TRUSTED in settings.get(scope, {}):
                value = settings[scope][TRUSTED]
                return list(value) if isinstance(value, list) else [value]
        return []

    def find(self, kind: str, name: str) -> str | None:
        """The id of the connector or model called ``name`` (models: not a chunk)."""
        body = {"size": 10, "query": {"bool": {
            "filter": [{"term": {"name.keyword": name}}],
            "must_not": [{"exists": {"field": "chunk_number"}}]}}}
        try:
            found = self.client.transport.perform_request(
                "POST", f"/_plugins/_ml/{kind}/_search", body=body)
        except Exception:  # noqa: BLE001 -- the index does not exist before the first install
            return None
        hits = found.get("hits", {}).get("hits", [])
        return str(hits[0]["_id"]) if hits else None

    def endpoint_in_use(self, endpoint: str) -> bool:
        """Whether another rex-search connector (another pipeline) still calls ``endpoint``:
        then its trusted-endpoint entry must stay."""
        body = {"size": 100, "query": {"prefix": {"name.keyword": "rex-search reranker ("}}}
        try:
            found = self.client.transport.perform_request(
                "POST", "/_plugins/_ml/connectors/_search", body=body)
        except Exception:  # noqa: BLE001 -- no connector index: none in use
            return False
        return any(hit.get("_source", {}).get("parameters", {}).get("endpoint") == endpoint
                   for hit in found.get("hits", {}).get("hits", []))

    def wait_task(self, task_id: str, attempts: int = 60) -> dict[str, Any]:
        for _ in range(attempts):
            task = self.call("read an ml-commons task", "GET", f"/_plugins/_ml/tasks/{task_id}")
            if task.get("state") in ("COMPLETED", "FAILED", "COMPLETED_WITH_ERROR"):
                if task["state"] != "COMPLETED":
                    raise BackendError(f"ml-commons task {task_id} ended {task['state']}: "
                                       f"{task.get('error', '')}")
                return task
            time.sleep(1)
        raise BackendError(f"ml-commons task {task_id} did not finish in {attempts} s")

    def deploy(self, model_id: str) -> None:
        response = self.call("deploy the model", "POST", f"/_plugins/_ml/models/{model_id}/_deploy")
        if response.get("task_id"):
            self.wait_task(response["task_id"])

    def undeploy(self, model_id: str, attempts: int = 60) -> None:
        """Undeploy, then wait until the model record no longer reads deployed (a model delete
        is refused until it does)."""
        self.call("undeploy the model", "POST", f"/_plugins/_ml/models/{model_id}/_undeploy")
        state = None
        for _ in range(attempts):
            state = self.call("read the model", "GET", f"/_plugins/_ml/models/{model_id}").get(
                "model_state")
            if state not in _LIVE_STATES:
                return
            time.sleep(0.5)
        raise BackendError(f"model {model_id} still reads {state} {attempts / 2:.0f} s after "
                           "its undeploy")

    def update_connector(self, connector_id: str, body: dict[str, Any], model_id: str | None,
                         attempts: int = 30) -> None:
        """Update the connector; ml-commons refuses while any node's model cache still holds a
        model on it, which can outlast the undeploy's answer (CI met it): undeploy again and
        retry for up to ``attempts`` seconds."""
        for attempt in range(attempts):
            try:
                self.call("update the connector", "PUT",
                          f"/_plugins/_ml/connectors/{connector_id}", body)
                return
            except BackendError as exc:
                if "still using this connector" not in str(exc) or attempt == attempts - 1:
                    raise
            time.sleep(1)
            if model_id is not None:
                self.undeploy(model_id)


def install(client: Any, service_url: str, pipeline: str = "rex-rerank") -> dict[str, str]:
    """Install, or update in place, the connector, model and search pipeline; returns ids."""
    cluster = MlCommons(client)
    trusted = cluster.trusted()
    steps = plan(service_url, pipeline, trusted=trusted)
    cluster.call("update the cluster settings", "PUT", steps[0].path, steps[0].body)
    connector_name, model_name = names(pipeline)
    connector = cluster.find("connectors", connector_name)
    model = cluster.find("models", model_name)
    if model is not None:  # a deployed model's connector cannot change: undeploy first
        cluster.undeploy(model)
    if connector is None:
        connector = str(cluster.call("create the connector", steps[1].method, steps[1].path,
                                     steps[1].body)["connector_id"])
    else:
        cluster.update_connector(connector, steps[1].body or {}, model)
    if model is None:
        body = _template("model.json", {"CONNECTOR_ID": connector, "MODEL_NAME": model_name})
        response = cluster.call("register the model", steps[2].method, steps[2].path, body)
        model = str(response.get("model_id") or
                    cluster.wait_task(response["task_id"])["model_id"])
    cluster.deploy(model)
    cluster.call("create the search pipeline", "PUT", f"/_search/pipeline/{pipeline}",
                 pipeline_body(model))
    return {"connector_id": connector, "model_id": model, "search_pipeline": pipeline,
            "private_ip_enabled": str(PRIVATE_IP in (steps[0].body or {})["persistent"]).lower()}


def uninstall(client: Any, service_url: str, pipeline: str = "rex-rerank") -> dict[str, Any]:
    """Remove the search pipeline, model, connector and trusted-endpoint entry that `install`
    made; what was not there is skipped. ``private_ip_enabled`` stays: other connectors may
    need it."""
    cluster = MlCommons(client)
    removed: dict[str, Any] = {"search_pipeline": None, "model_id": None, "connector_id": None,
                               "trusted_endpoint": None}
    try:
        client.transport.perform_request("GET", f"/_search/pipeline/{pipeline}")
    except Exception:  # noqa: BLE001 -- not there: nothing to delete
        pass
    else:
        cluster.call("delete the search pipeline", "DELETE", f"/_search/pipeline/{pipeline}")
        removed["search_pipeline"] = pipeline
    connector_name, model_name = names(pipeline)
    model = cluster.find("models", model_name)
    if model is not None:
        cluster.undeploy(model)
        cluster.call("delete the model", "DELETE", f"/_plugins/_ml/models/{model}")
        removed["model_id"] = model
    connector = cluster.find("connectors", connector_name)
    if connector is not None:
        cluster.call("delete the connector", "DELETE", f"/_plugins/_ml/connectors/{connector}")
        removed["connector_id"] = connector
    regex = trusted_regex(service_url)
    trusted = cluster.trusted()
    if regex in trusted and not cluster.endpoint_in_use(service_base(service_url)):
        cluster.call("update the cluster settings", "PUT", "/_cluster/settings",
                     {"persistent": {TRUSTED: [t for t in trusted if t != regex]}})
        removed["trusted_endpoint"] = regex
    return removed


def check_index(client: Any, index: str) -> None:
    """The pipeline reranks on ``rerank_text``: an index built before that field existed must
    be rebuilt first (its documents lack it)."""
    try:
        mappings = client.indices.get_mapping(index=index)
    except Exception as exc:  # noqa: BLE001
        raise BackendError(f"cannot read the mapping of {index}: {exc}") from None
    for mapping in mappings.values():
        if RERANK_FIELD not in mapping.get("mappings", {}).get("properties", {}):
            raise BackendError(f"{index} has no {RERANK_FIELD} field (built by an older "
                               "rex-search): rebuild it with `rex-search index CATALOG "
                               "--index URL --reindex` before installing the pipeline")
