"""rex-search: retrieve, rerank and explain product search results.

The public API is small: build a `SearchPipeline` (from a `Config`), call `search`; or, with
candidates of your own and no index, call `rank(query, documents)`.
"""

from rex_search.backends.base import Filters
from rex_search.catalog.reader import read_catalog
from rex_search.catalog.schema import Product
from rex_search.config import Config, load_config
from rex_search.errors import RexSearchError
from rex_search.pipelines.documents import DocumentError
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.ranking import Ranking, rank
from rex_search.results import Hit, SearchResult

__all__ = ["Config", "DocumentError", "Filters", "Hit", "Product", "Ranking", "RexSearchError",
           "SearchPipeline", "SearchResult", "load_config", "rank", "read_catalog"]
