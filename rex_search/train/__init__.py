"""Training the RexReranker recipe (work in progress: the loss is implemented and tested)."""
