"""Catalog records and the streaming reader that validates them."""

from rex_search.catalog.reader import RejectedRow, read_catalog
from rex_search.catalog.schema import Product

__all__ = ["Product", "RejectedRow", "read_catalog"]
