"""Turning catalog records into an index: embedding and the resumable indexing loop."""
