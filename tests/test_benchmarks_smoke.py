"""Every script under benchmarks/ runs in its smoke mode (tiny sizes, seconds), so a changed
signature fails here and not in a user's hands. Scripts are found, not listed: a new script
without ``--smoke`` fails this test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench_cluster_scale import NO_NODE
from tests.conftest import REPO

SCRIPTS = sorted(p for p in (REPO / "benchmarks").glob("*.py")
                 if 'if __name__ == "__main__"' in p.read_text())


def test_the_benchmarks_are_found():
    assert {p.name for p in SCRIPTS} >= {"bench_pipeline.py", "bench_rerank.py",
                                         "robustness.py", "embedders.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_the_benchmark_runs_in_smoke_mode(script: Path):
    done = subprocess.run([sys.executable, str(script), "--smoke"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    if done.returncode == NO_NODE and "no OpenSearch node" in done.stderr:
        if os.environ.get("REX_REQUIRE_OPENSEARCH") == "1":
            pytest.fail(done.stderr[-1500:])
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, (done.stdout[-1500:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(done.stdout.strip().splitlines()) >= 3  # it printed a table
