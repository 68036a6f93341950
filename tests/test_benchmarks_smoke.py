"""Every script under benchmarks/ runs in its smoke mode (tiny sizes, seconds), so a changed
signature fails here and not in a user's hands. Scripts are found, not listed: a new script
without ``--smoke`` fails this test. The ones whose smoke run builds an index, trains or starts
servers (10-50 s each on 2 cores) run in the slow suite, which CI runs too."""

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
SLOW_SMOKE = {"bench_rerank", "bench_latency", "bench_system", "cv_losses", "bench_cluster_scale",
              "bench_service", "robustness", "bench_pipeline"}


def test_the_benchmarks_are_found():
    assert {p.name for p in SCRIPTS} >= {"bench_pipeline.py", "bench_rerank.py",
                                         "robustness.py", "embedders.py"}
    assert {p.stem for p in SCRIPTS} >= SLOW_SMOKE  # a stale name here marks nothing slow


@pytest.mark.parametrize("script", [
    pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW_SMOKE else [])
    for p in SCRIPTS])
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
