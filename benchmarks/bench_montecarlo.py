"""Benchmark: a 1000-replicate Monte Carlo study of the default classroom design.

Design: ``Design()`` = 40 subjects x 6 visits, random intercept, MAR dropout.
Every analysis of :func:`lmm_teach.monte_carlo` (LMM numeric time with
Satterthwaite and Wald tests, LMM categorical time, complete-case RM-ANOVA
with GG correction, naive OLS).

The comparison is "the statsmodels way": per replicate, simulate a DataFrame,
fit ``MixedLM`` with numeric time and with categorical time (REML), the
RM-ANOVA of the complete cases (lmm_teach's, statsmodels has no GG
correction) and an OLS; timed on a subsample in this same run and scaled to
1000 replicates.  It has no Satterthwaite df (statsmodels offers Wald tests
only), so it does less work than the study it is compared with.

Run:  .venv/bin/python benchmarks/bench_montecarlo.py [--reps 1000] [--sm-reps 30]
Target (issue 3): under 5 s on 2 cores, at least 10x faster than statsmodels.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def statsmodels_way(design, n_reps: int, seed: int) -> float:
    """Seconds for ``n_reps`` replicates done with statsmodels fits, in this process."""
    import statsmodels.formula.api as smf

    from lmm_teach.anova import rm_anova
    from lmm_teach.simulate import simulate

    children = np.random.SeedSequence(seed).spawn(n_reps)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MixedLM's convergence chatter
        for child in children:
            data = simulate(design, child)
            smf.mixedlm("y ~ time", data, groups=data["subject"]).fit(reml=True)
            smf.mixedlm("y ~ C(visit)", data, groups=data["subject"]).fit(reml=True)
            try:
                rm_anova(data, y="y", subject="subject", visit="visit")
            except ValueError:
                pass
            smf.ols("y ~ time", data).fit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--sm-reps", type=int, default=30, help="statsmodels subsample, scaled up")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    from lmm_teach.design import Design
    from lmm_teach.montecarlo import monte_carlo
    from lmm_teach.montecarlo.run import default_workers

    design = Design()
    workers = args.workers or default_workers()
    # warm-up: imports and first-call costs are not what a teacher waits for twice
    monte_carlo(design, n_reps=4, seed=0, n_workers=1)

    res = monte_carlo(design, n_reps=args.reps, seed=2024, n_workers=workers)
    ours = res.elapsed
    one = monte_carlo(design, n_reps=min(args.reps, 200), seed=2024, n_workers=1)
    per_rep_serial = one.elapsed / one.n_done

    sm = statsmodels_way(design, args.sm_reps, seed=2024)
    sm_total = sm / args.sm_reps * args.reps

    print(f"lmm_teach.monte_carlo: {args.reps} replicates of Design() (40 x 6, MAR dropout), "
          f"every analysis, {workers} worker(s): {ours:.2f} s "
          f"({1000 * per_rep_serial:.1f} ms per replicate in one process)")
    print(f"statsmodels way: {1000 * sm / args.sm_reps:.1f} ms per replicate "
          f"({args.sm_reps} timed), scaled to {args.reps}: {sm_total:.1f} s in one process, "
          f"{sm_total / workers:.1f} s if perfectly spread over {workers} cores")
    print(f"ratio statsmodels / lmm_teach: {sm_total / ours:.1f}x (vs one process), "
          f"{sm_total / workers / ours:.1f}x (vs statsmodels on {workers} cores)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the end "
          "(other work on the cores slows both sides; the ratio is measured in the same run)")
    print(f"target: < 5 s -> {'met' if ours < 5 else 'NOT met'}; >= 10x -> "
          f"{'met' if sm_total / ours >= 10 else 'NOT met'}")
    print(f"failed replicates: {res.n_failed}; table:")
    print(res.table[["method", "hypothesis", "n_ok", "rejection_rate", "bias", "coverage",
                     "n_failed"]].to_string(index=False))


if __name__ == "__main__":
    main()
