"""Search pipelines: retrieval, fusion, reranking, rules."""
