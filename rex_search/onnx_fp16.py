"""Store an ONNX graph's weights as fp16, computed in fp32: the file halves, the arithmetic
does not change (each large initializer is cast back to fp32 in front of its users).

Standalone on purpose (numpy and onnx only): `tools/build_models.py` loads this file by path
while the package is being built, before rex-search or its dependencies are installed.
"""

from __future__ import annotations

from typing import Any


def fp16_stored(model: Any, min_size: int = 1024) -> None:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place: every fp32 initializer with more
    than ``min_size`` values becomes ``{name}_fp16`` plus a Cast to fp32 named ``name``."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        weights = numpy_helper.to_array(init)
        if weights.dtype == np.float32 and weights.size > min_size:
            graph.initializer.remove(init)
            graph.initializer.append(numpy_helper.from_array(weights.astype(np.float16),
                                                             f"{init.name}_fp16"))
            casts.append(helper.make_node("Cast", [f"{init.name}_fp16"], [init.name],
                                          to=TensorProto.FLOAT))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
