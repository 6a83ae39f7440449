"""How many threads a stage may use: its share of the machine under ``make -jN``.

Not run on its own. Every stage that starts a thread pool calls ``apply()`` first thing in
its ``main``; code that sets a pool size itself (``n_jobs`` of the tree libraries and of
oneDAL, the SVC worker processes) asks ``n_jobs()`` / ``workers()``.

Why: under ``make -j2`` two stages run at once, and each would otherwise start OpenMP, BLAS
and torch pools as wide as the machine. Their threads spin against each other and a tiny
fit becomes 50 times slower (issue 23). So a stage takes about ``cores / N`` threads, where
N is how many heavy stages make can run side by side:

* make passes ``-jN`` to every recipe in ``MAKEFLAGS`` (GNU make 4.3: `` -j2
  --jobserver-auth=3,4``; ``-j`` alone means no limit);
* the Makefile exports ``VAELAB_RUNS``, the number of runs (VAE x resolution). Each run is
  one chain encode -> classify, so no more than that many heavy stages run at once:
  N = min(-j, runs, cores), and ``-j`` without a number counts as ``runs``. With one run,
  ``make -j2`` therefore keeps every core for each stage, as plain ``make`` does. The pixel
  baselines, shared by every run, are fitted after every run is encoded and get every core
  (the Makefile sets ``VAELAB_RUNS=1`` for them): the other runs' baselines steps wait.

Without ``-j`` (or with ``-j1``) nothing changes: ``apply`` sets nothing and ``budget`` is
the machine's core count, what the libraries take by default. Results do not depend on the
thread count (tested), except oneDAL's SVC, whose last few predictions can change with it;
README says so, and the SVC results key includes the count.
"""

from __future__ import annotations

import os
import re
import sys

# Environment variables read by the OpenMP and BLAS runtimes when they load; set for those a
# stage loads after apply() (threadpoolctl below resizes those already loaded).
POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cores() -> int:
    """Logical CPUs this process may use (joblib honours affinity and container quotas)."""
    from joblib import cpu_count

    return max(1, cpu_count())


def make_jobs(makeflags: str) -> int | None:
    """Job slots of the make that started us: 1 without -j, None for -j without a number.

    ``MAKEFLAGS`` holds the single-letter flags first ("ks"), then "-jN" (GNU make 4.x).
    """
    jobs: int | None = 1
    for word in makeflags.split():
        match = re.fullmatch(r"-j(\d*)", word)
        if match:
            jobs = int(match.group(1)) if match.group(1) else None
    return jobs


def side_by_side(makeflags: str, runs: int | None, n_cores: int) -> int:
    """How many heavy stages may run at once: min(-j, runs, cores), at least 1."""
    jobs = make_jobs(makeflags)
    if jobs == 1:
        return 1
    limit = runs if runs else (jobs or n_cores)
    return max(1, min(jobs or limit, limit, n_cores))


def budget(environ: dict | None = None) -> int:
    """Threads for this stage: cores // side_by_side(); all cores outside make -j."""
    environ = os.environ if environ is None else environ
    runs = environ.get("VAELAB_RUNS", "")
    n_cores = cores()
    return max(1, n_cores // side_by_side(environ.get("MAKEFLAGS", ""),
                                          int(runs) if runs.isdigit() else None, n_cores))


def n_jobs(environ: dict | None = None) -> int | None:
    """``n_jobs`` for a library's own pool: None outside make -j (the library's default, which
    also honours OMP_NUM_THREADS and threadpoolctl limits, as the tests set), else budget()."""
    n = budget(environ)
    return None if n >= cores() else n


def workers(environ: dict | None = None) -> int:
    """Single-threaded worker processes for this stage: its budget, on physical cores only
    (two workers on one core's hyperthreads gain little)."""
    from joblib import cpu_count

    return max(1, min(budget(environ), cpu_count(only_physical_cores=True)))


def apply(environ: dict | None = None) -> int:
    """Size every pool this process has or will start to ``budget()``; return it.

    Outside make -j it changes nothing. Under it: torch's intra-op pool, every OpenMP and BLAS
    library already loaded (threadpoolctl), and, through the environment, those loaded later
    (LightGBM's and XGBoost's OpenMP, oneDAL reads its count from n_jobs: ``budget()``).
    """
    environ = os.environ if environ is None else environ
    n = budget(environ)
    if n >= cores():
        return n
    for name in POOL_VARIABLES:
        os.environ[name] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)  # stays in force for the rest of the process
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n
