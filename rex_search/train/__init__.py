"""Training the shipped reranker: data (synth, distill, data), the RexReranker recipe (loss,
recipe), ONNX export of the embedder, and the package bundle (needs the ``[train]`` extra)."""
