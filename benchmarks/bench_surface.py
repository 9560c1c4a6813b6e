"""Benchmark: the REML surface and a drag's refit at 40 patients x 6 visits, against one statsmodels fit.

* the profiled REML log-likelihood of the random-intercept model over 100 values of theta,
  with the optimum and the profile-likelihood interval (``profile_intercept``): target
  (issue 12) under 50 ms;
* the random-slope deviance surface (41 x 41 grid);
* one refit of the Refit panel after a dragged measurement (fit, pooling lines, shrinkage,
  conditional SDs, tables and the bokeh source assignments): the kernel's share of the
  150 ms from mouse release to redrawn plots (the browser's share is measured in
  tests/e2e/test_machinery.py).

Reference: one ``statsmodels.formula.api.mixedlm("y ~ time", groups=subject).fit(reml=True)``
of the same data, timed in this run.  Best of ``--repeat`` runs each.

Run:     .venv/bin/python benchmarks/bench_surface.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import warnings

from _timing import best_of  # one BLAS thread (before numpy loads) and the fastest of n calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    import statsmodels.formula.api as smf

    import lmm_teach
    from lmm_teach.design import Design
    from lmm_teach.lmm.profile import deviance_surface, profile_intercept
    from lmm_teach.simulate import simulate
    from lmm_teach.widgets.refit_panel import RefitPanel

    data = simulate(Design(mar_dropout=0.0), 1)
    ri = lmm_teach.fit_lmm(data, y="y", subject="subject", time="time")
    rs = lmm_teach.fit_lmm(data, y="y", subject="subject", time="time", random_slope=True)

    def statsmodels_fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            smf.mixedlm("y ~ time", data, groups=data["subject"]).fit(reml=True)

    panel = RefitPanel(data, y="y", subject="subject", time="time")
    y0 = float(data.loc[0, "y"])
    flip = [0]

    def drag():
        flip[0] ^= 1
        panel.move(0, y0 + 10.0 * flip[0])

    t_sm = best_of(statsmodels_fit, args.repeat)
    t_prof = best_of(lambda: profile_intercept(ri, n_points=100), args.repeat)
    t_surf = best_of(lambda: deviance_surface(rs, n_points=41), args.repeat)
    t_drag = best_of(drag, args.repeat)
    load = os.getloadavg()
    print(f"data: {data['subject'].nunique()} patients x {data['visit'].nunique()} visits, "
          f"best of {args.repeat}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    print(f"statsmodels MixedLM fit (reference)          {1e3 * t_sm:8.1f} ms")
    print(f"REML profile, random intercept, 100 points   {1e3 * t_prof:8.1f} ms   ratio {t_prof / t_sm:5.2f}"
          f"   (target < 50 ms)")
    print(f"deviance surface, random slope, 41 x 41      {1e3 * t_surf:8.1f} ms   ratio {t_surf / t_sm:5.2f}")
    print(f"refit after a drag (kernel side)             {1e3 * t_drag:8.1f} ms   ratio {t_drag / t_sm:5.2f}")


if __name__ == "__main__":
    main()
