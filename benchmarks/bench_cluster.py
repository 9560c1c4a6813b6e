"""Benchmark: Monte Carlo on a dask cluster and inline (no processes, no threads).

1. A 10 000-replicate study of ``Design()`` (every analysis) on the local process
   pool (2 workers) and on a dask ``LocalCluster`` of 2 single-threaded worker
   processes on the loopback interface, measured in the same run; prints both,
   their ratio and the cluster path's overhead per replicate.  The cluster is
   warmed up first (its workers import lmm_teach once), as a cluster that
   serves several studies is.
2. The inline path of a browser's Python (``monte_carlo_stepwise``: chunks of at
   most 10 replicates, driven step by step) against one core's throughput
   (``monte_carlo(..., n_workers=1)``, the same replicates in this process) and
   against the per-core throughput of the process pool.

Targets (issue 13): cluster within 1.5x of the local pool; inline within 2.5x
of one core.  The machine may be shared: the load average is printed beside
the ratios.

Run:  .venv/bin/python benchmarks/bench_cluster.py [--reps 10000] [--inline-reps 1000]
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10_000)
    parser.add_argument("--inline-reps", type=int, default=1000)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from lmm_teach.design import Design
    from lmm_teach.montecarlo import monte_carlo
    from lmm_teach.montecarlo.study import monte_carlo_stepwise

    design = Design()
    n = args.reps
    print(f"load average before: {os.getloadavg()}")

    start = time.perf_counter()
    local = monte_carlo(design, n_reps=n, seed=1, n_workers=2)
    t_local = time.perf_counter() - start

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        executor = client.get_executor()
        monte_carlo(design, n_reps=40, seed=99, executor=executor)  # warm-up: imports on the workers
        start = time.perf_counter()
        remote = monte_carlo(design, n_reps=n, seed=1, executor=executor)
        t_cluster = time.perf_counter() - start
    same = remote.table.equals(local.table)
    print(f"{n} replicates of Design(), every analysis:")
    print(f"  local process pool, 2 workers : {t_local:7.1f} s ({1e3 * t_local / n:.2f} ms per replicate)")
    print(f"  dask LocalCluster, 2 workers  : {t_cluster:7.1f} s ({1e3 * t_cluster / n:.2f} ms per replicate)")
    print(f"  ratio cluster / local         : {t_cluster / t_local:7.2f}  (target <= 1.5)")
    print(f"  cluster overhead per replicate: {1e3 * (t_cluster - t_local) / n:+.3f} ms")
    print(f"  same table                    : {same}")

    m = args.inline_reps
    start = time.perf_counter()
    one = monte_carlo(design, n_reps=m, seed=2, n_workers=1)
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    steps = monte_carlo_stepwise(design, n_reps=m, seed=2)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            inline = stop.value
            break
    t_inline = time.perf_counter() - start
    per_core_pool = t_local * 2 / n
    print(f"{m} replicates, inline (chunks of <= 10, step by step) vs one core:")
    print(f"  one core (n_workers=1)        : {t_one:7.1f} s ({1e3 * t_one / m:.2f} ms per replicate)")
    print(f"  inline, stepwise              : {t_inline:7.1f} s ({1e3 * t_inline / m:.2f} ms per replicate)")
    print(f"  ratio inline / one core       : {t_inline / t_one:7.2f}  (target <= 2.5)")
    print(f"  ratio inline / pool per core  : {1e3 * t_inline / m / (1e3 * per_core_pool):7.2f}")
    print(f"  same table                    : {inline.table.equals(one.table)}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
