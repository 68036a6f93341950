"""What an OpenSearch cluster needs to call rex-search's reranker from its own search pipelines.

Steps (bodies in ``integrations/opensearch/*.json``):
1. ``PUT /_cluster/settings``: trust the rex-search service endpoint for ml-commons connectors;
2. ``POST /_plugins/_ml/connectors/_create``: a remote connector to ``POST {service}/rerank``,
   using ml-commons' Cohere rerank pre/post-processing (our /rerank speaks that shape:
   ``{query, documents, top_n}`` -> ``{results: [{index, relevance_score}]}``);
3. ``POST /_plugins/_ml/models/_register?deploy=true``: a remote model over the connector;
4. ``PUT /_search/pipeline/{name}``: a search pipeline whose ``rerank`` response processor
   (``ml_opensearch`` type) sends each hit's title, brand and description to that model.
Then search with ``?search_pipeline={name}`` and ``"ext": {"rerank": {"query_context":
{"query_text": "..."}}}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from rex_search.errors import BackendError, ConfigError


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    body: dict[str, Any]


def _template(name: str, values: dict[str, str]) -> dict[str, Any]:
    text = resources.files("rex_search.integrations").joinpath(f"opensearch/{name}").read_text()
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return json.loads(text)


def plan(service_url: str, pipeline: str = "rex-rerank", connector_id: str = "<connector_id>",
         model_id: str = "<model_id>") -> list[Step]:
    """The requests, in order; ids unknown until the cluster answers are placeholders."""
    if not re.fullmatch(r"https?://[\w.-]+(:\d+)?", service_url.rstrip("/")):
        raise ConfigError(f"--service must be http(s)://host[:port], got {service_url!r}")
    service = service_url.rstrip("/")
    trusted = "^" + re.escape(service) + "/.*$"
    return [
        Step("PUT", "/_cluster/settings",
             _template("cluster-settings.json", {"TRUSTED_ENDPOINT_REGEX": trusted.replace(
                 "\\", "\\\\")})),
        Step("POST", "/_plugins/_ml/connectors/_create",
             _template("connector.json", {"REX_SERVICE_ENDPOINT": service})),
        Step("POST", "/_plugins/_ml/models/_register?deploy=true",
             _template("model.json", {"CONNECTOR_ID": connector_id})),
        Step("PUT", f"/_search/pipeline/{pipeline}",
             _template("search-pipeline.json", {"MODEL_ID": model_id})),
    ]


def install(client: Any, service_url: str, pipeline: str = "rex-rerank") -> dict[str, str]:
    """Run the plan against a cluster (an opensearch-py client); returns the created ids."""
    steps = plan(service_url, pipeline)
    try:
        client.transport.perform_request(steps[0].method, steps[0].path, body=steps[0].body)
        connector = client.transport.perform_request(steps[1].method, steps[1].path,
                                                     body=steps[1].body)["connector_id"]
        register = plan(service_url, pipeline, connector_id=connector)[2]
        response = client.transport.perform_request(register.method, register.path,
                                                    body=register.body)
        model = response.get("model_id") or _wait_for_model(client, response["task_id"])
        search = plan(service_url, pipeline, connector, model)[3]
        client.transport.perform_request(search.method, search.path, body=search.body)
    except (KeyError, TypeError) as exc:
        raise BackendError(f"unexpected ml-commons response while installing: {exc}") from None
    return {"connector_id": connector, "model_id": model, "search_pipeline": pipeline}


def _wait_for_model(client: Any, task_id: str, attempts: int = 30) -> str:
    import time

    for _ in range(attempts):
        task = client.transport.perform_request("GET", f"/_plugins/_ml/tasks/{task_id}")
        if task.get("model_id"):
            return str(task["model_id"])
        time.sleep(1)
    raise BackendError(f"ml-commons task {task_id} did not produce a model id in {attempts} s")
