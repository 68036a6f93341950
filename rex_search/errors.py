"""One error hierarchy: the CLI prints ``Error: <message>`` for any of these and exits non-zero."""

from __future__ import annotations


class RexSearchError(Exception):
    """Base of every error rex-search raises on purpose."""


class CatalogError(RexSearchError):
    """A catalog file cannot be read at all (missing file, missing required column, bad format)."""


class BackendError(RexSearchError):
    """The index cannot be opened, written or queried."""


class ModelError(RexSearchError):
    """A model cannot be found, verified or run."""


class ConfigError(RexSearchError):
    """A configuration value is invalid."""


class QueryError(RexSearchError, ValueError):
    """A query that cannot be searched (empty, too long, not valid Unicode text)."""


class FilterError(RexSearchError, ValueError):
    """A search filter of the wrong type or range (names the filter and what was expected)."""
