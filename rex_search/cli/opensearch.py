"""`rex-search opensearch ...`: install and remove the rerank search pipeline."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from rex_search.cli.common import (
    config_for,
)
from rex_search.cli.root import cli
from rex_search.errors import RexSearchError


@cli.group("opensearch")
def opensearch_group() -> None:
    """OpenSearch integration."""


def _opensearch_client(ctx: click.Context, index: str | None, command: str) -> tuple[Any, str]:
    from rex_search.backends.connection import is_cluster_url, parse_target
    from rex_search.backends.opensearch import opensearch_client

    target = config_for(ctx, index).index.path
    if not is_cluster_url(target) or not target.startswith("opensearch"):
        raise RexSearchError(f"{command} needs --index opensearch[+https]://host:port/INDEX")
    return opensearch_client(parse_target(target)), parse_target(target).index


@opensearch_group.command("install-pipeline")
@click.option("--index", "--backend", "index", help="opensearch[+https]://... cluster URL")
@click.option("--service", help="the rex-search service, e.g. http://10.0.0.5:8080")
@click.option("--local-model", is_flag=True,
              help="register the shipped reranker inside ml-commons instead (no service)")
@click.option("--name", default="rex-rerank", show_default=True, help="search pipeline name")
@click.option("--api-key-env", metavar="VAR",
              help="the service's key (serve --api-key-env VAR): the connectors send it")
@click.option("--embed", is_flag=True,
              help="also let the cluster embed: models on the service's /v1/embed and the "
                   "ingest pipeline NAME-embed (index with ?embed=cluster)")
@click.option("--dry-run", is_flag=True, help="print the requests instead of sending them")
@click.pass_context
def install_pipeline(ctx: click.Context, index: str | None, service: str | None,
                     local_model: bool, name: str, api_key_env: str | None, embed: bool,
                     dry_run: bool) -> None:
    """Run rex-search's ranking from an OpenSearch search pipeline: query understanding,
    filtered retrieval, rerank and rules (again: new connectors and models replace the old).
    --embed: the cluster embeds documents and queries through the service (before indexing
    with ?embed=cluster). --local-model: the shipped reranker inside ml-commons, rerank only
    (no service)."""
    from rex_search.integrations.opensearch_pipeline import check_index, install, plan

    if bool(service) == local_model:
        raise click.UsageError("give exactly one of --service URL and --local-model")
    if embed and local_model:
        raise click.UsageError("--embed needs --service: the service does the embedding")
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise click.UsageError(f"--api-key-env {api_key_env}: that variable is not set")
    rrf_k = config_for(ctx, index).retrieval.rrf_k  # the same fusion as `rex-search query`
    if dry_run:
        if service is None:
            raise click.UsageError("--dry-run shows the --service plan")
        for step in plan(service, name, trusted=["<endpoints the cluster already trusts>"],
                         api_key="<the key>" if api_key else None, rrf_k=rrf_k,
                         embed=embed):
            body = "" if step.body is None else json.dumps(step.body, indent=2)
            click.echo(f"{step.method} {step.path}\n{body}\n")
        return
    client, alias = _opensearch_client(ctx, index, "install-pipeline")
    # --embed comes before the first index (it needs the ingest pipeline): no index yet is fine.
    if not (embed and not client.indices.exists(index=alias)):
        check_index(client, alias)
    if service is not None:
        click.echo(json.dumps(install(client, service, name, api_key, rrf_k, embed), indent=2))
        return
    import tempfile

    from rex_search.integrations.ml_commons_model import install_local
    from rex_search.model_files import BUNDLED_RERANKER, resolve_model

    with tempfile.TemporaryDirectory() as work:
        created = install_local(client, Path(resolve_model(BUNDLED_RERANKER)), Path(work), name)
    created.pop("model_zip")
    click.echo(json.dumps(created, indent=2))


@opensearch_group.command("uninstall-pipeline")
@click.option("--index", "--backend", "index", help="opensearch[+https]://... cluster URL")
@click.option("--service", required=True, help="the service URL given to install-pipeline")
@click.option("--name", default="rex-rerank", show_default=True, help="search pipeline name")
@click.pass_context
def uninstall_pipeline(ctx: click.Context, index: str | None, service: str, name: str) -> None:
    """Remove the search pipeline, model, connector and trusted endpoint install-pipeline made."""
    from rex_search.integrations.opensearch_pipeline import uninstall

    client, _ = _opensearch_client(ctx, index, "uninstall-pipeline")
    click.echo(json.dumps(uninstall(client, service, name), indent=2))
