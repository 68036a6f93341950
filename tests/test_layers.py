"""No import runs upward between rex_search's subpackages: a cycle means a shared type lives a
floor too high (move it down, as `Candidate` went to results.py and the query parser to query.py).
"""

from __future__ import annotations

import ast
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


def test_no_import_cycles_between_subpackages():
    edges = _edges()
    cycles = sorted(f"{a} <-> {b}" for a in edges for b in edges[a]
                    if a < b and a in edges.get(b, set()))
    assert cycles == []
    assert "rules" in edges["pipelines"] and "pipelines" not in edges.get("rules", set())
