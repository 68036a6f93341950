"""What an OpenSearch cluster needs to run rex-search's whole ranking from its own search
pipeline: a plain ``?search_pipeline=`` query gets the query understanding, the filtered hybrid
retrieval, the reranker and the business rules, with no rex-search client in the loop.

Steps (bodies in ``integrations/opensearch/*.json``):
1. ``PUT /_cluster/settings``: trust the rex-search service endpoint for ml-commons connectors,
   *appended* to the endpoints the cluster already trusts; and, when the service has a private
   or loopback address, ``plugins.ml_commons.connector.private_ip_enabled`` (ml-commons refuses
   connectors to such addresses otherwise);
2. two remote connectors, each with a remote model over it, deployed: ``understand`` (``POST
   {service}/opensearch/understand``) and ``rank`` (``POST {service}/opensearch/rank``); both
   send ``Authorization: Bearer <key>`` when the service is protected (``--api-key-env``);
3. ``PUT /_search/pipeline/{name}``:
   - request: ``oversample`` (remembers the caller's size), then ``ml_inference`` sends the
     query text (``query.multi_match.query``) to ``understand`` and replaces the search with
     the answer: a ``hybrid`` query (BM25 + kNN, the understood text, the query's filters) over
     the rerank window;
   - phase results: ``score-ranker-processor`` fuses BM25 and kNN by RRF, as rex-search does;
   - response: ``ml_inference`` (many-to-one) sends every hit's ``parent_asin``, ``product``
     and ``stock`` with the query to ``rank``, which reranks and applies the rules and answers
     one score per hit; ``rerank`` ``by_field`` sorts by it; ``truncate_hits`` cuts to the
     caller's size.
Then search with ``GET index/_search?search_pipeline={name}`` and ``{"query": {"multi_match":
{"query": "running shoes no nike"}}, "size": 10}``.

With ``embed=True`` the cluster also embeds: two more connectors and models call the service's
``/v1/embed`` (Cohere's embed shape) as ``search_document`` and as ``search_query``, and the
ingest pipeline ``{name}-embed`` runs ``text_embedding`` on each document's ``embed_text`` (the
text `rex-search index` embeds) into ``embedding``; an index created with ``?embed=cluster``
names it as its ``default_pipeline``, and a ``neural`` query with the query model's id embeds
the query text inside the cluster.

Installing again finds the connectors and models by name and updates them (one of each per
pipeline name, never a second); `uninstall` removes what `install` made (and what an older
rex-search installed under the same pipeline name), including its trusted endpoint entry.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from rex_search.backends.cluster_bodies import EMBED_SUFFIX, ml_search_body
from rex_search.backends.cluster_bodies import ml_names as names  # how a re-install finds them
from rex_search.errors import BackendError, ConfigError

logger = logging.getLogger(__name__)

TRUSTED = "plugins.ml_commons.trusted_connector_endpoints_regex"
PRIVATE_IP = "plugins.ml_commons.connector.private_ip_enabled"
RERANK_FIELD = "rerank_text"
EMBED_FIELD = "embed_text"


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


ROLES = ("understand", "rank")
# The embedding roles (with ``embed``) and the Cohere input_type each sends.
EMBED_ROLES = {"embed-document": "search_document", "embed-query": "search_query"}
_LEGACY_ROLE = "reranker"  # the rerank-only connector of rex-search before 0.8


def connector_body(role: str, service_url: str, pipeline: str,
                   api_key: str | None = None) -> dict[str, Any]:
    """The connector of ``role``; with ``api_key`` it sends ``Authorization: Bearer`` (the key
    is stored as an ml-commons credential, which the cluster encrypts)."""
    template = "embed-connector.json" if role in EMBED_ROLES else f"{role}-connector.json"
    body = _template(template, {"REX_SERVICE_ENDPOINT": service_base(service_url),
                                "CONNECTOR_NAME": names(pipeline, role)[0],
                                "INPUT_TYPE": EMBED_ROLES.get(role, "")})
    if api_key is not None:
        body["credential"] = {"api_key": api_key}
        body["actions"][0]["headers"]["Authorization"] = "Bearer ${credential.api_key}"
    else:  # ml-commons requires a credential object; there is no secret to keep
        body["credential"] = {"note": "rex-search serve runs without an API key"}
    return body


def ingest_pipeline_name(pipeline: str) -> str:
    """The ingest pipeline ``install(embed=True)`` makes; ``?embed=cluster`` indexes use it."""
    return f"{pipeline}{EMBED_SUFFIX}"


def ingest_pipeline_body(document_model: str) -> dict[str, Any]:
    return _template("ingest-pipeline.json", {"MODEL_ID": document_model,
                                              "EMBED_FIELD": EMBED_FIELD})


def plan(service_url: str, pipeline: str = "rex-rerank",
         trusted: list[str] | None = None, api_key: str | None = None,
         rrf_k: int = 60, embed: bool = False) -> list[Step]:
    """The requests of a first install, in order; ids unknown until the cluster answers are
    placeholders, and ``trusted`` is what the cluster trusts already (read it first)."""
    service = service_base(service_url)
    regex = trusted_regex(service)
    settings: dict[str, Any] = {TRUSTED: [*(trusted or []), *([] if regex in (trusted or [])
                                                              else [regex])],
                                "plugins.ml_commons.only_run_on_ml_node": False}
    if is_private(service):
        settings[PRIVATE_IP] = True
    steps = [Step("PUT", "/_cluster/settings", {"persistent": settings})]
    for role in _roles(embed):
        model_name = names(pipeline, role)[1]
        steps += [
            Step("POST", "/_plugins/_ml/connectors/_create",
                 connector_body(role, service, pipeline, api_key)),
            Step("POST", "/_plugins/_ml/models/_register",
                 _template("model.json", {"CONNECTOR_ID": f"<{role}_connector_id>",
                                          "MODEL_NAME": model_name})),
            Step("POST", f"/_plugins/_ml/models/<{role}_model_id>/_deploy", None)]
    steps.append(Step("PUT", f"/_search/pipeline/{pipeline}",
                      pipeline_body("<understand_model_id>", "<rank_model_id>", rrf_k)))
    if embed:
        steps.append(Step("PUT", f"/_ingest/pipeline/{ingest_pipeline_name(pipeline)}",
                          ingest_pipeline_body("<embed-document_model_id>")))
    return steps


def _roles(embed: bool) -> tuple[str, ...]:
    return (*ROLES, *EMBED_ROLES) if embed else ROLES


def pipeline_body(understand_model: str, rank_model: str, rrf_k: int = 60) -> dict[str, Any]:
    """The search pipeline that runs rex-search's ranking through the two models."""
    return _template("search-pipeline.json", {"UNDERSTAND_MODEL_ID": understand_model,
                                              "RANK_MODEL_ID": rank_model,
                                              "RRF_K": str(int(rrf_k))})


def rerank_pipeline_body(model_id: str) -> dict[str, Any]:
    """A pipeline whose ``rerank`` processor sends ``rerank_text`` to ``model_id`` (the model
    alone: what an in-cluster model without the service can do)."""
    return _template("rerank-pipeline.json", {"MODEL_ID": model_id,
                                              "RERANK_FIELD": RERANK_FIELD})


# Refusals that pass once a new cluster has allocated ml-commons' system indexes.
_DUPLICATE_DEPLOY = "Duplicate deploy model task"
_SETTLING = re.compile(r"master key timed out|primary shard is not active|"
                       r"unavailable_shards_exception|no_shard_available")

# Model states in which ml-commons refuses to change the connector or delete the model.
_LIVE_STATES = ("DEPLOYED", "DEPLOYING", "PARTIALLY_DEPLOYED")


class MlCommons:
    """The few ml-commons calls install/uninstall make, with errors that say which step."""

    def __init__(self, client: Any, settle_s: float = 60.0) -> None:
        self.client = client
        self.settle_s = settle_s

    def call(self, what: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """One request; the refusals of a cluster still settling (ml-commons' system indexes
        not yet allocated, e.g. "Fetching master key timed out" on a new multi-node cluster)
        are retried for up to ``settle_s`` seconds."""
        deadline = time.monotonic() + self.settle_s
        while True:
            try:
                return self.client.transport.perform_request(method, path, body=body) or {}
            except Exception as exc:  # noqa: BLE001 -- the client raises many types
                if not _SETTLING.search(str(exc)) or time.monotonic() > deadline:
                    raise BackendError(f"OpenSearch refused to {what}: {exc}") from None
                logger.warning("OpenSearch is settling (%s): retrying to %s", str(exc)[:120],
                               what)
                time.sleep(2.0)

    def trusted(self) -> list[str]:
        settings = self.call("read the cluster settings", "GET",
                             "/_cluster/settings?include_defaults=true&flat_settings=true")
        for scope in ("transient", "persistent", "defaults"):
            if TRUSTED in settings.get(scope, {}):
                value = settings[scope][TRUSTED]
                return list(value) if isinstance(value, list) else [value]
        return []

    def find_all(self, kind: str, name: str) -> list[str]:
        """The ids of every connector or model called ``name`` (models: not a chunk)."""
        try:
            found = self.client.transport.perform_request(
                "POST", f"/_plugins/_ml/{kind}/_search", body=ml_search_body(name))
        except Exception:  # noqa: BLE001 -- the index does not exist before the first install
            return []
        return [str(hit["_id"]) for hit in found.get("hits", {}).get("hits", [])]

    def find(self, kind: str, name: str) -> str | None:
        """The id of one connector or model called ``name``, if any."""
        found = self.find_all(kind, name)
        return found[0] if found else None

    def endpoint_in_use(self, endpoint: str, besides: str) -> bool:
        """Whether a rex-search connector of another pipeline than ``besides`` still calls
        ``endpoint``: then its trusted-endpoint entry must stay."""
        body = {"size": 100, "query": {"prefix": {"name.keyword": "rex-search "}}}
        try:
            found = self.client.transport.perform_request(
                "POST", "/_plugins/_ml/connectors/_search", body=body)
        except Exception:  # noqa: BLE001 -- no connector index: none in use
            return False
        return any(hit.get("_source", {}).get("parameters", {}).get("endpoint") == endpoint
                   and not hit["_source"].get("name", "").endswith(f"({besides})")
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
        """Deploy and wait; a deploy that a settling cluster fails on some node (its task ends
        "Fetching master key timed out" there) is deployed again, up to ``settle_s``."""
        deadline = time.monotonic() + self.settle_s
        while True:
            response = self.call("deploy the model", "POST",
                                 f"/_plugins/_ml/models/{model_id}/_deploy")
            if not response.get("task_id"):
                return
            try:
                self.wait_task(response["task_id"])
                return
            except BackendError as exc:
                # "Duplicate deploy model task": a node still holds an earlier deploy of it
                # (one that failed there while the cluster settled); wait for that deploy,
                # and where it never finishes, undeploy everywhere so the next one starts clean.
                if _DUPLICATE_DEPLOY in str(exc):
                    if self._deployed(model_id, min(deadline, time.monotonic() + 10.0)):
                        return
                    self.call("undeploy the model", "POST",
                              f"/_plugins/_ml/models/{model_id}/_undeploy")
                if not (_SETTLING.search(str(exc)) or _DUPLICATE_DEPLOY in str(exc)) \
                        or time.monotonic() > deadline:
                    raise
                logger.warning("OpenSearch is settling (%s): deploying again", str(exc)[:120])
                time.sleep(2.0)

    def _deployed(self, model_id: str, deadline: float) -> bool:
        """Whether the model reads DEPLOYED before ``deadline`` (False once a deploy still in
        progress ends otherwise: then it is deployed again)."""
        while time.monotonic() < deadline:
            state = self.call("read the model", "GET", f"/_plugins/_ml/models/{model_id}").get(
                "model_state")
            if state == "DEPLOYED":
                return True
            if state != "DEPLOYING":
                return False
            time.sleep(1.0)
        return False

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

    def remove(self, models: list[str], connectors: list[str], what: str) -> None:
        """Undeploy and delete the models, then delete their connectors (a connector is
        refused while a model record still names it)."""
        for model in models:
            self.undeploy(model)
            self.call(f"delete the {what} model {model}", "DELETE",
                      f"/_plugins/_ml/models/{model}")
        for connector in connectors:
            self.call(f"delete the {what} connector {connector}", "DELETE",
                      f"/_plugins/_ml/connectors/{connector}")


def install(client: Any, service_url: str, pipeline: str = "rex-rerank",
            api_key: str | None = None, rrf_k: int = 60, embed: bool = False) -> dict[str, str]:
    """Install, or replace, the connectors, models and search pipeline; returns the new ids.

    A reinstall never edits a live connector (ml-commons refuses while any node's model cache
    still holds a model on it, and CI met a cache that kept one past its undeploy): it creates
    and deploys new connectors and models, points the pipeline at them, and only then removes
    the previous ones, so searches keep working throughout."""
    cluster = MlCommons(client)
    steps = plan(service_url, pipeline, trusted=cluster.trusted(), api_key=api_key, rrf_k=rrf_k,
                 embed=embed)
    cluster.call("update the cluster settings", "PUT", steps[0].path, steps[0].body)
    # Without ``embed`` the embedding roles stay as they are: indexes may still ingest with them.
    previous = {role: _existing(cluster, pipeline, role)
                for role in (*_roles(embed), _LEGACY_ROLE)}
    ids: dict[str, str] = {}
    for role in _roles(embed):
        connector_name, model_name = names(pipeline, role)
        body = connector_body(role, service_url, pipeline, api_key)
        connector = str(cluster.call(f"create the {role} connector", "POST",
                                     "/_plugins/_ml/connectors/_create", body)["connector_id"])
        register = _template("model.json", {"CONNECTOR_ID": connector, "MODEL_NAME": model_name})
        response = cluster.call(f"register the {role} model", "POST",
                                "/_plugins/_ml/models/_register", register)
        model = str(response.get("model_id") or
                    cluster.wait_task(response["task_id"])["model_id"])
        cluster.deploy(model)
        ids[f"{role}_connector_id"], ids[f"{role}_model_id"] = connector, model
    cluster.call("create the search pipeline", "PUT", f"/_search/pipeline/{pipeline}",
                 pipeline_body(ids["understand_model_id"], ids["rank_model_id"], rrf_k))
    if embed:
        ingest = ingest_pipeline_name(pipeline)
        cluster.call("create the ingest pipeline", "PUT", f"/_ingest/pipeline/{ingest}",
                     ingest_pipeline_body(ids["embed-document_model_id"]))
        ids["ingest_pipeline"] = ingest
    for role, (models, connectors) in previous.items():
        try:
            cluster.remove(models, connectors, f"previous {role}")
        except BackendError as exc:
            raise BackendError(f"the search pipeline {pipeline} is installed and uses the new "
                               f"models, but {exc}; install again to retry the cleanup") from None
    return {**ids, "search_pipeline": pipeline, "authorization": str(api_key is not None).lower(),
            "private_ip_enabled": str(PRIVATE_IP in (steps[0].body or {})["persistent"]).lower()}


def _existing(cluster: MlCommons, pipeline: str, role: str) -> tuple[list[str], list[str]]:
    """Every model and connector id one role of ``pipeline`` has now."""
    connector_name, model_name = names(pipeline, role)
    return cluster.find_all("models", model_name), cluster.find_all("connectors", connector_name)


def _remove_role(cluster: MlCommons, pipeline: str, role: str) -> tuple[list[str], list[str]]:
    """Undeploy and delete one role's models and connectors; (model ids, connector ids)."""
    models, connectors = _existing(cluster, pipeline, role)
    cluster.remove(models, connectors, role)
    return models, connectors


def uninstall(client: Any, service_url: str, pipeline: str = "rex-rerank") -> dict[str, Any]:
    """Remove the search pipeline, models, connectors and trusted-endpoint entry that `install`
    made; what was not there is skipped. ``private_ip_enabled`` stays: other connectors may
    need it."""
    cluster = MlCommons(client)
    removed: dict[str, Any] = {"search_pipeline": None, "model_ids": [], "connector_ids": [],
                               "trusted_endpoint": None}
    try:
        client.transport.perform_request("GET", f"/_search/pipeline/{pipeline}")
    except Exception:  # noqa: BLE001 -- not there: nothing to delete
        pass
    else:
        cluster.call("delete the search pipeline", "DELETE", f"/_search/pipeline/{pipeline}")
        removed["search_pipeline"] = pipeline
    ingest = ingest_pipeline_name(pipeline)
    removed["ingest_pipeline"] = None
    try:
        client.transport.perform_request("GET", f"/_ingest/pipeline/{ingest}")
    except Exception:  # noqa: BLE001 -- not there: nothing to delete
        pass
    else:  # refused while an index names it as its default_pipeline: the message says so
        cluster.call("delete the ingest pipeline (an index that embeds with it must go first)",
                     "DELETE", f"/_ingest/pipeline/{ingest}")
        removed["ingest_pipeline"] = ingest
    for role in (*ROLES, *EMBED_ROLES, _LEGACY_ROLE):
        models, connectors = _remove_role(cluster, pipeline, role)
        removed["model_ids"] += models
        removed["connector_ids"] += connectors
    regex = trusted_regex(service_url)
    trusted = cluster.trusted()
    if regex in trusted and not cluster.endpoint_in_use(service_base(service_url), pipeline):
        cluster.call("update the cluster settings", "PUT", "/_cluster/settings",
                     {"persistent": {TRUSTED: [t for t in trusted if t != regex]}})
        removed["trusted_endpoint"] = regex
    return removed


def check_index(client: Any, index: str) -> None:
    """The pipeline reads ``rerank_text``, ``product`` and ``stock``: an index built before
    those fields existed must be rebuilt first (its documents lack them)."""
    try:
        mappings = client.indices.get_mapping(index=index)
    except Exception as exc:  # noqa: BLE001
        raise BackendError(f"cannot read the mapping of {index}: {exc}") from None
    for mapping in mappings.values():
        properties = mapping.get("mappings", {}).get("properties", {})
        missing = [f for f in (RERANK_FIELD, "product", "stock") if f not in properties]
        if missing:
            raise BackendError(f"{index} has no {', '.join(missing)} field (built by an older "
                               "rex-search): rebuild it with `rex-search index CATALOG "
                               "--index URL --reindex` before installing the pipeline")
