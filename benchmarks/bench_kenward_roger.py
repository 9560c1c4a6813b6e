"""What does Kenward-Roger cost? fit_lmm(df="kenward-roger") against fit_lmm (Satterthwaite), and pbkrtest.

Two problems, both ``y ~ time + (time | subject)`` (REML): 40 subjects x 6 visits
and 1000 subjects x 10 visits (simulated, seed 1).  For each, the best of
several interleaved rounds (one call of each contender per round, so that a
burst of load on the shared machine hits both alike) of

* ``fit_lmm(..., df="satterthwaite")``: the whole fit with Satterthwaite df;
* ``fit_lmm(..., df="kenward-roger")``: the same fit with Kenward-Roger se, df and F tests;
* ``kr_pieces``: the Kenward-Roger step alone (X'V^-1 X, P, Q, W, Phi_A, per subject);

and the ratio KR / Satterthwaite.  When ``Rscript`` is on PATH, pbkrtest's own
cost on the same data is timed (``summary(m, ddf = "Kenward-Roger")`` on a
fitted ``lmer`` model, i.e. ``vcovAdj`` and ``Lb_ddf``; R start-up and the fit
excluded) at 40 x 6; at 1000 x 10 pbkrtest inverts the dense 10000 x 10000
marginal covariance (800 MB per copy, minutes), so it runs only with
``--r-large``.  The load average is printed beside the ratios.
Run: ``python benchmarks/bench_kenward_roger.py [--r-large]``.
"""

from __future__ import annotations

from _timing import best_of  # isort: skip  (first: one BLAS thread before numpy loads)

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

from lmm_teach.lmm import fit_lmm
from lmm_teach.lmm.kenward_roger import kr_pieces


def simulate(n_subjects: int, n_visits: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = np.repeat(np.arange(n_subjects), n_visits)
    t = np.tile(np.arange(n_visits, dtype=float), n_subjects)
    b0, b1 = rng.normal(0.0, 5.0, n_subjects), rng.normal(0.0, 1.0, n_subjects)
    y = 100.0 - 1.0 * t + b0[s] + b1[s] * t + rng.normal(0.0, 3.0, s.size)
    return pd.DataFrame({"subject": [f"s{i:04d}" for i in s], "time": t, "y": y})


R_SCRIPT = r"""
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest)})
d <- read.csv(commandArgs(TRUE)[1])
m <- lmer(y ~ time + (time | subject), d, REML = TRUE)
best <- Inf
for (i in 1:as.integer(commandArgs(TRUE)[2])) {
  t0 <- proc.time()[["elapsed"]]; s <- summary(m, ddf = "Kenward-Roger")
  best <- min(best, proc.time()[["elapsed"]] - t0)
}
cat(best, "\n")
"""


def time_pbkrtest(data: pd.DataFrame, repeats: int) -> float | None:
    rscript = shutil.which("Rscript")
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = os.path.join(tmp, "d.csv"), os.path.join(tmp, "t.R")
        data.to_csv(csv, index=False)
        with open(script, "w") as fh:
            fh.write(R_SCRIPT)
        out = subprocess.run([rscript, script, csv, str(repeats)], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        print("    pbkrtest failed:", (out.stderr.strip().splitlines() or ["?"])[-1])
        return None
    return float(out.stdout.split()[0])


def run(n_subjects: int, n_visits: int, rounds: int, r_repeats: int | None) -> None:
    data = simulate(n_subjects, n_visits)
    kw = dict(y="y", subject="subject", time="time", random_slope=True)
    sat = fit_lmm(data, **kw)
    kr = fit_lmm(data, df="kenward-roger", **kw)  # warm up
    codes = pd.factorize(data["subject"])[0]
    X = np.column_stack([np.ones(len(data)), data["time"].to_numpy()])
    tv = data["time"].to_numpy()

    def pieces():
        return kr_pieces(X, codes, time=tv, random_slope=True, cluster=None, theta=np.array(sat.theta),
                         sigma2=sat.sigma**2, beta=sat.fixed["estimate"].to_numpy())

    best = {"sat": np.inf, "kr": np.inf, "pieces": np.inf}
    calls = {"sat": lambda: fit_lmm(data, **kw), "kr": lambda: fit_lmm(data, df="kenward-roger", **kw),
             "pieces": pieces}
    for _ in range(rounds):
        for name, fn in calls.items():
            best[name] = min(best[name], best_of(fn, 1))
    ms = {k: v * 1e3 for k, v in best.items()}
    print(f"{n_subjects} subjects x {n_visits} visits, random slope ({len(data)} rows)")
    print(f"    fit_lmm, Satterthwaite        {ms['sat']:9.2f} ms")
    print(f"    fit_lmm, Kenward-Roger        {ms['kr']:9.2f} ms   (the KR step alone: {ms['pieces']:.2f} ms)")
    print(f"    KR / Satterthwaite = {best['kr'] / best['sat']:.2f}x   "
          f"(time slope: df {sat.fixed.loc['time', 'df']:.2f} Satterthwaite, {kr.fixed.loc['time', 'df']:.2f} KR)")
    if r_repeats is None:
        return
    t_r = time_pbkrtest(data, r_repeats)
    if t_r is not None:
        print(f"    pbkrtest (lmerTest summary, ddf = 'Kenward-Roger', fit excluded) {t_r * 1e3:9.2f} ms; "
              f"pbkrtest / our KR step = {t_r / best['pieces']:.1f}x; "
              f"pbkrtest / our whole KR fit = {t_r / best['kr']:.1f}x")


def main(argv: list[str]) -> int:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in load) if load else 'unknown'} "
          f"({os.cpu_count()} CPUs); BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}")
    have_r = shutil.which("Rscript") is not None
    if not have_r:
        print("Rscript is not on PATH: pbkrtest is not timed.")
    run(40, 6, rounds=15, r_repeats=5 if have_r else None)
    large_r = have_r and "--r-large" in argv
    if have_r and not large_r:
        print("(pbkrtest at 1000 x 10 forms a dense 10000 x 10000 covariance: timed only with --r-large)")
    run(1000, 10, rounds=3, r_repeats=1 if large_r else None)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load:
        print(f"load average at end: {', '.join(f'{x:.2f}' for x in load)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
