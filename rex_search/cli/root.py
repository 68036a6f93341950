"""The `rex-search` group and its console entry point.

Errors print ``Error: <message>`` and exit with the error's code (1 unless it says otherwise),
with no traceback; usage errors exit 2."""

from __future__ import annotations

import logging
import sys

import click

from rex_search.config import load_config
from rex_search.errors import RexSearchError


@click.group()
@click.version_option(package_name="rex-search", prog_name="rex-search")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML configuration file (default: $REX_CONFIG).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """rex-search: retrieve, rerank and explain product search results."""
    # Only rex-search's own messages: client libraries log tracebacks for every failed request.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("rex_search")
    if not package.handlers:
        package.addHandler(handler)
    package.setLevel(logging.INFO if verbose else logging.WARNING)
    ctx.obj = {"config": load_config(config_path)}


def main() -> None:
    """Console entry point: a `RexSearchError` becomes `Error: ...` and its ``exit_code``."""
    try:
        cli.main(standalone_mode=False, prog_name="rex-search")
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RexSearchError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
