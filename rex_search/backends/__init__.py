"""Index backends behind one protocol: embedded (tantivy + faiss) by default."""

from rex_search.backends.base import Backend, Filters, IndexedProduct, ScoredId

__all__ = ["Backend", "Filters", "IndexedProduct", "ScoredId"]
