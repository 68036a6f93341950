"""No import runs upward between rex_search's subpackages: a cycle means a shared type lives a
floor too high (move it down, as `Candidate` went to results.py and the query parser to query.py).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rex_search"


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for file in PACKAGE.rglob("*.py"):
        module = "rex_search." + ".".join(file.relative_to(PACKAGE).with_suffix("").parts)
        tree = ast.parse(file.read_text())
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test)
                for sub in node.body for n in ast.walk(sub)}
        for node in ast.walk(tree):
            if id(node) in skip or not isinstance(node, ast.ImportFrom | ast.Import):
                continue
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names]
            for name in names:
                if name.startswith("rex_search.") and _group(name) != _group(module):
                    edges.setdefault(_group(module), set()).add(_group(name))
    return edges


# Floors, lowest first: a module imports only from floors below its own (never sideways or up).
LAYERS: list[set[str]] = [
    {"errors", "lru", "results", "onnx_fp16"},
    {"onnx_session", "model_files"},
    {"catalog"},
    {"query", "backends"},
    {"indexer"},
    {"rerank"},
    {"config"},
    {"rules"},
    {"pipelines"},
    {"evaluate", "integrations", "ranking"},
    {"train"},
    {"service"},
    {"cli"},
    {"__init__", "__main__"},
]


def _floor(group: str) -> int:
    for floor, groups in enumerate(LAYERS):
        if group in groups:
            return floor
    raise AssertionError(f"rex_search.{group} is on no floor: add it to LAYERS")


def test_no_import_cycles_between_subpackages():
    graph = _edges()
    graphlib.TopologicalSorter(graph).static_order()  # raises CycleError on any cycle
    assert "rules" in graph["pipelines"] and "pipelines" not in graph.get("rules", set())


def test_every_import_runs_down_a_floor():
    upward = sorted(f"{a} (floor {_floor(a)}) imports {b} (floor {_floor(b)})"
                    for a, targets in _edges().items() for b in targets
                    if _floor(b) >= _floor(a))
    assert upward == []
