"""One error hierarchy: the CLI prints ``Error: <message>`` for any of these and exits with the
error's ``exit_code``, as click's exceptions carry theirs: 1 when an operation failed (catalog,
index, model), 2 when what was asked is invalid (configuration, query, filter), like a usage
error."""

from __future__ import annotations


class RexSearchError(Exception):
    """Base of every error rex-search raises on purpose."""

    exit_code = 1


class CatalogError(RexSearchError):
    """A catalog file cannot be read at all (missing file, missing required column, bad format)."""


class BackendError(RexSearchError):
    """The index cannot be opened, written or queried."""


class IndexMissing(BackendError):
    """The index to open does not exist (yet)."""


class ModelError(RexSearchError):
    """A model cannot be found, verified or run."""


class ConfigError(RexSearchError, ValueError):
    """A configuration value or option is invalid."""

    exit_code = 2


class QueryError(RexSearchError, ValueError):
    """A query that cannot be searched (empty, too long, not valid Unicode text), or a page
    that cannot be shown."""

    exit_code = 2


class FilterError(RexSearchError, ValueError):
    """A search filter of the wrong type or range (names the filter and what was expected)."""

    exit_code = 2
