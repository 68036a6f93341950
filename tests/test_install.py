"""`pip install rex-search` with no extras, on every Python >= 3.11 this machine has: no torch
comes with it, and indexing and querying work from that install (slow: real installs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, RULES_FIXTURE

pytestmark = pytest.mark.slow
PYTHONS = ["python3.11", "python3.12", "python3.13"]


def _interpreter(python: str) -> str | None:
    """A working ``python`` (a pyenv shim for an inactive version exists but fails)."""
    candidates = [shutil.which(python), *map(str, sorted(
        Path.home().glob(f".pyenv/versions/{python[6:]}*/bin/{python}")))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.parametrize("python", PYTHONS)
def test_a_plain_install_has_no_torch_and_answers_queries(python: str, tmp_path: Path):
    interpreter = _interpreter(python)
    if interpreter is None:
        pytest.skip(f"{python} is not installed here")
    venv = tmp_path / "venv"
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(REPO)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-2000:]
    bin_dir = venv / "bin"
    no_torch = subprocess.run([str(bin_dir / "python"), "-c", "import torch"],
                              capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    index = tmp_path / "index"
    built = subprocess.run([str(bin_dir / "rex-search"), "index", str(RULES_FIXTURE),
                            "--index", str(index)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    found = subprocess.run([str(bin_dir / "rex-search"), "query", "usb c charger not apple",
                            "--index", str(index), "--json"], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr[-2000:]
    assert '"hits"' in found.stdout and "Apple" not in found.stdout.split('"hits"')[1][:3000]
    modules = subprocess.run([str(bin_dir / "python"), "-c", (
        "import sys; from rex_search.cli import main; sys.argv = ['rex-search', 'query', "
        f"'usb c charger', '--index', '{index}']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)")],
        capture_output=True, text=True)
    assert modules.stdout.strip().endswith("False False"), modules.stdout[-500:]
    hub = subprocess.run([str(bin_dir / "rex-search"), "query", "usb c charger", "--index",
                          str(index), "--reranker", "thebajajra/RexReranker-mini"],
                         capture_output=True, text=True)
    assert hub.returncode == 1 and "Traceback" not in hub.stderr, hub.stderr[-2000:]
    assert "pip install 'rex-search[train]'" in hub.stderr
