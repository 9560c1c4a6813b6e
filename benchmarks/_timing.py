"""What the benchmarks share: one BLAS thread, and the fastest of several calls.

Import this module before numpy (``import _timing`` as a script's first import):
the thread counts must be in the environment before BLAS loads.  One thread for
every contender, because the machine is shared and a multi-threaded BLAS waiting
for a busy core makes a timing swing by 2x from run to run.  A variable already
set (e.g. ``OPENBLAS_NUM_THREADS=2 python benchmarks/bench_fit.py``) is kept.
"""

from __future__ import annotations

import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def best_of(fn, repeat: int) -> float:
    """The fastest of ``repeat`` calls of ``fn()``, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
