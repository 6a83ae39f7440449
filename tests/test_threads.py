"""analysis.threads: each stage's share of the cores under make -jN, and results that do not
depend on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from analysis import models, threads
from helpers import ROOT


@pytest.mark.parametrize("makeflags, jobs", [
    ("", 1), (" -j1", 1), (" -j2 --jobserver-auth=3,4", 2), ("ks -j3 --jobserver-auth=3,4", 3),
    (" -j", None), (" -j2 --jobserver-auth=3,4 --no-print-directory", 2), ("r", 1),
])
def test_make_jobs_reads_makeflags(makeflags, jobs):
    assert threads.make_jobs(makeflags) == jobs


@pytest.mark.parametrize("makeflags, runs, n_cores, expected", [
    ("", 3, 16, 1),          # plain make: one stage at a time
    (" -j1", 3, 16, 1),
    (" -j2", 2, 16, 2),
    (" -j2", 1, 16, 1),      # one run: its stages follow one another, keep every core
    (" -j8", 3, 16, 3),      # never more heavy stages than runs
    (" -j8", 8, 2, 2),       # nor than cores
    (" -j", 4, 16, 4),       # -j without a number: one per run
    (" -j", None, 16, 16),   # ... or per core when the run count is unknown
    (" -j4", None, 16, 4),
])
def test_side_by_side_is_min_of_jobs_runs_and_cores(makeflags, runs, n_cores, expected):
    assert threads.side_by_side(makeflags, runs, n_cores) == expected


def test_budget_splits_the_cores(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 16)
    assert threads.budget({}) == 16
    assert threads.budget({"MAKEFLAGS": " -j2 --jobserver-auth=3,4", "VAELAB_RUNS": "2"}) == 8
    assert threads.budget({"MAKEFLAGS": " -j", "VAELAB_RUNS": "3"}) == 5
    assert threads.budget({"MAKEFLAGS": " -j32", "VAELAB_RUNS": "32"}) == 1


APPLY = """
import json, os, sys
from analysis import threads
threads.cores = lambda: 4
import torch
from threadpoolctl import threadpool_info
n = threads.apply()
print(json.dumps({"n": n, "torch": torch.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS"),
                  "pools": sorted({p["num_threads"] for p in threadpool_info()})}))
"""


def apply_in_subprocess(env: dict) -> dict:
    """threads.apply() in a fresh interpreter on a pretend 4-core machine (pools are global)."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("MAKEFLAGS", "VAELAB_RUNS", "OMP_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", APPLY], cwd=ROOT, env=clean | env,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(proc.stdout.splitlines()[-1])


def test_apply_under_make_j2_sizes_torch_blas_and_openmp():
    out = apply_in_subprocess({"MAKEFLAGS": " -j2 --jobserver-auth=3,4", "VAELAB_RUNS": "2"})
    assert out == {"n": 2, "torch": 2, "omp": "2", "pools": [2]}


def test_apply_without_j_changes_nothing():
    out = apply_in_subprocess({"VAELAB_RUNS": "2"})
    assert out["n"] == 4 and out["omp"] is None


def test_classify_results_do_not_depend_on_the_thread_count(monkeypatch):
    """Every model at 1 and at 2 threads (BLAS/OpenMP and n_jobs) gives the same predictions;
    SVC here is libsvm (oneDAL's may change with its thread count, README says so)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    centers = rng.normal(0, 0.5, size=(5, 24))
    y = rng.integers(0, 5, size=800)
    x = (centers[y] + rng.normal(size=(len(y), 24))).astype(np.float32)
    train, test = {"f": x[:600]}, {"f": x[600:]}
    outputs = []
    for n in (1, 2):
        monkeypatch.setattr(threads, "budget", lambda environ=None, n=n: n)
        with threadpool_limits(limits=n):
            outputs.append(models.fit_all(train, test, y[:600], y[600:], list("abcde"), seed=0,
                                            n_jobs=1, svc="libsvm"))
    assert outputs[0][0] == outputs[1][0]  # every metric of every model
    for key, pred in outputs[0][1].items():
        np.testing.assert_array_equal(pred, outputs[1][1][key], err_msg=key)
