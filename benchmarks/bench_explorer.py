"""Benchmark: one full Explorer update at the default design, against one
statsmodels MixedLM fit of the same data.

One update is what happens when a learner releases a slider
(:meth:`lmm_teach.widgets.Explorer.refresh`): simulate the data, fit the LMM
with numeric time (Satterthwaite df, random-effect LRT), the LMM with
categorical time and the RM-ANOVA, compare them, compute the visible tab's
plot data and tables and assign them to its bokeh sources (which serialises
the patches that would go to the browser).  Hidden tabs are plotted when
they are selected; the update is timed with each tab visible (the Data tab
is the one a learner sees first, and the headline ratio), and the cost of
plotting all four tabs is printed too.

The reference is a single ``statsmodels.formula.api.mixedlm("y ~ time",
groups=subject).fit(reml=True)`` of the data of that update: the same model as
the Explorer's first fit, without its second fit, its ANOVA or its plots.
Both are timed in this run, best of ``--repeat`` runs each.

Run:     .venv/bin/python benchmarks/bench_explorer.py [--repeat 15]
Target (issue 4): ratio update / MixedLM fit below 1/3.
"""

from __future__ import annotations

import argparse
import warnings

from _timing import best_of  # one BLAS thread (before numpy loads) and the fastest of n calls


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
    t_sm = best_of(statsmodels_fit, args.repeat)
    t_numbers = best_of(numbers_only, args.repeat)
    per_tab = {}
    for i, title in enumerate(explorer.tabs.titles[:4]):
        explorer.tabs.selected_index = i
        per_tab[title] = best_of(update, args.repeat)
    explorer.tabs.selected_index = 0

    def update_all():
        update()
        assert explorer.update_all_panels()
    t_all = best_of(update_all, args.repeat)

    t_update = per_tab["Data"]
    ratio = t_update / t_sm
    print(f"data: {design.n_subjects} subjects, {len(data)} measurements (Design(), seed {args.seed}); "
          f"best of {args.repeat}")
    print(f"one statsmodels MixedLM fit          {t_sm * 1e3:8.1f} ms")
    print(f"numbers only (simulate, 2 LMMs, ANOVA, compare) {t_numbers * 1e3:6.1f} ms "
          f"= {t_numbers / t_sm:.3f} x MixedLM")
    for title, t in per_tab.items():
        print(f"one update, {title + ' tab visible':22s} {t * 1e3:8.1f} ms = {t / t_sm:.3f} x MixedLM")
    print(f"one update plotting all four tabs    {t_all * 1e3:8.1f} ms = {t_all / t_sm:.3f} x MixedLM")
    verdict = "meets" if ratio < 1 / 3 else "MISSES"
    print(f"ratio update (Data tab) / MixedLM fit: {ratio:.3f} ({verdict} the target < 0.333)")


if __name__ == "__main__":
    main()
