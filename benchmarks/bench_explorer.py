"""Benchmark: one full Explorer update at the default design, against one
statsmodels MixedLM fit of the same data.

One update is what happens when a learner releases a slider
(:meth:`lmm_teach.widgets.Explorer.refresh`): simulate the data, fit the LMM
with numeric time (Satterthwaite df, random-effect LRT), the LMM with
categorical time and the RM-ANOVA, compare them, compute the shrinkage table,
every panel's plot data and tables, and assign them to the bokeh sources
(which serialises the patches that would go to the browser).

The reference is a single ``statsmodels.formula.api.mixedlm("y ~ time",
groups=subject).fit(reml=True)`` of the data of that update: the same model as
the Explorer's first fit, without its second fit, its ANOVA or its plots.
Both are timed in this run, best of ``--repeat`` runs each.

Run:     .venv/bin/python benchmarks/bench_explorer.py [--repeat 15]
Target (issue 4): ratio update / MixedLM fit below 1/3.
"""

from __future__ import annotations

import argparse
import time
import warnings


def best_of(fn, repeat: int) -> float:
    """The fastest of ``repeat`` calls, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import statsmodels.formula.api as smf

    from lmm_teach.design import Design
    from lmm_teach.widgets import Explorer
    from lmm_teach.widgets.explorer import compute

    design = Design()
    explorer = Explorer(design=design, seed=args.seed)  # builds the figures once, as in a notebook
    assert explorer.error is None, explorer.error_traceback
    data = explorer.result.data

    def update():
        # Same seed each time: the same work as a learner's slider release.
        assert explorer.refresh()

    def statsmodels_fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MixedLM's convergence chatter
            smf.mixedlm("y ~ time", data, groups=data["subject"]).fit(reml=True)

    def numbers_only():
        compute(design, args.seed)

    update()
    statsmodels_fit()  # warm-up: imports, caches
    t_update = best_of(update, args.repeat)
    t_numbers = best_of(numbers_only, args.repeat)
    t_sm = best_of(statsmodels_fit, args.repeat)
    ratio = t_update / t_sm
    print(f"data: {design.n_subjects} subjects, {len(data)} measurements (Design(), seed {args.seed})")
    print(f"one Explorer update            {t_update * 1e3:8.1f} ms  (best of {args.repeat})")
    print(f"  of which numbers (compute)   {t_numbers * 1e3:8.1f} ms")
    print(f"  of which panels and plots    {(t_update - t_numbers) * 1e3:8.1f} ms")
    print(f"one statsmodels MixedLM fit    {t_sm * 1e3:8.1f} ms  (best of {args.repeat})")
    verdict = "meets" if ratio < 1 / 3 else "MISSES"
    print(f"ratio update / MixedLM fit: {ratio:.3f} ({verdict} the target < 0.333)")


if __name__ == "__main__":
    main()
