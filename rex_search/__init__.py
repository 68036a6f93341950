"""rex-search: retrieve, rerank and explain product search results.

The public API is small: build a `SearchPipeline` (from a `Config`), call `search`.
"""

from rex_search.backends.base import Filters
from rex_search.catalog.reader import read_catalog
from rex_search.config import Config, load_config
from rex_search.errors import RexSearchError
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.results import Hit, SearchResult

__all__ = ["Config", "Filters", "Hit", "RexSearchError", "SearchPipeline", "SearchResult",
           "load_config", "read_catalog"]
