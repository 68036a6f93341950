"""The `rex-search` command line, one module per command group; each command parses its
options, calls the core and prints (``rex-search --help`` lists them)."""

from rex_search.cli import evaluation, opensearch, search, training  # noqa: F401 (registers)
from rex_search.cli.root import cli, main

__all__ = ["cli", "main"]
