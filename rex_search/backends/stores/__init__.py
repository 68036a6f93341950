"""The embedded backend's three stores, one implementation each: vectors (faiss, append-only
segments), BM25 (tantivy) and records (sqlite, the source of truth)."""
