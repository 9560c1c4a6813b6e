"""How fast is fit_mmrm? Times against R's mmrm (when Rscript and the mmrm package are installed).

Two problems, two arms, random intercept and slope per subject, 15 % of the
visits after baseline missing completely at random: 40 subjects x 6 visits
and 1000 subjects x 10 visits.  The model is the unstructured MMRM
``y ~ visit * arm + us(visit | subject)`` by REML with Satterthwaite df.

Timed, best of several repeats in the same run:

* ``fit_mmrm`` (every number: validation, the fit, Satterthwaite df for the
  coefficients, type-III tests, LS-means and their differences), with its
  default optimiser (R mmrm's own L-BFGS-B run, which reproduces R's numbers)
  and with ``exact=True`` (Newton's method with the exact Hessian: the exact
  optimum, fewer iterations);
* R's ``mmrm(...)`` inside one Rscript process (timed there with
  ``proc.time``, best of the same number of repeats), when available;
* statsmodels: it has no MMRM (``MixedLM`` fits random effects with an
  independent residual, ``GEE`` has no REML and no unstructured covariance
  with missing visits handled by likelihood), so there is nothing to time.

BLAS runs one thread on both sides.  The load average is printed beside the
ratios: on a busy machine absolute times mean little, ratios measured in the
same run a little more.  Run: ``python benchmarks/bench_mmrm.py``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lmm_teach.mmrm import fit_mmrm  # noqa: E402

SIZES = ((40, 6, 30), (1000, 10, 3))  # subjects, visits, repeats


def simulate(n_subjects: int, n_visits: int, *, missing: float = 0.15, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = np.repeat(np.arange(n_subjects), n_visits)
    v = np.tile(np.arange(n_visits), n_subjects)
    arm = np.where(np.arange(n_subjects) % 2 == 0, "A", "B")
    b0 = rng.normal(0.0, 5.0, n_subjects)
    b1 = rng.normal(0.0, 1.0, n_subjects)
    effect = np.where(arm[s] == "B", -0.5 * v, 0.0)
    y = 100.0 - 1.0 * v + effect + b0[s] + b1[s] * v + rng.normal(0.0, 3.0, s.size)
    keep = (v == 0) | (rng.random(s.size) >= missing)
    return pd.DataFrame({"subject": [f"s{i:04d}" for i in s[keep]], "arm": arm[s][keep],
                         "visit": v[keep], "y": y[keep]})


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


R_SCRIPT = r"""
suppressPackageStartupMessages(library(mmrm))
args <- commandArgs(TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
d$visit <- factor(d$visit, levels = sort(unique(d$visit)))
d$subject <- factor(d$subject)
d$arm <- factor(d$arm)
reps <- as.integer(args[2])
f <- y ~ visit * arm + us(visit | subject)
m <- mmrm(f, data = d, reml = TRUE, method = "Satterthwaite")  # warm-up
best <- Inf
for (i in seq_len(reps)) {
  t0 <- proc.time()[["elapsed"]]
  m <- mmrm(f, data = d, reml = TRUE, method = "Satterthwaite")
  best <- min(best, proc.time()[["elapsed"]] - t0)
}
cat(sprintf("%.6f %.6f\n", best, as.numeric(logLik(m))))
"""


def r_available() -> str | None:
    """None when R's mmrm can be timed, else the reason in words."""
    if shutil.which("Rscript") is None:
        return "Rscript is not installed"
    proc = subprocess.run(["Rscript", "-e", "library(mmrm)"], capture_output=True, text=True)
    if proc.returncode != 0:
        return "R's mmrm package is not installed"
    return None


def r_time(data: pd.DataFrame, repeats: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "d.csv")
        data.to_csv(path, index=False)
        script = os.path.join(tmp, "t.R")
        with open(script, "w") as fh:
            fh.write(R_SCRIPT)
        proc = subprocess.run(["Rscript", script, path, str(repeats)], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "Rscript failed")
        best, ll = proc.stdout.split()
        return float(best), float(ll)


def main() -> int:
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  (2 cores shared: ratios mean more "
          "than absolute times)")
    why_not_r = r_available()
    if why_not_r:
        print(f"R: skipped ({why_not_r})")
    print("statsmodels: cannot fit this model (no MMRM: MixedLM has an independent residual, GEE no REML "
          "unstructured covariance), so there is no statsmodels time to compare")
    for n_subj, n_vis, reps in SIZES:
        data = simulate(n_subj, n_vis)
        kw = dict(y="y", subject="subject", visit="visit", between="arm", covariance="us")
        fit = fit_mmrm(data, **kw)
        exact = fit_mmrm(data, **kw, exact=True)
        t_def = best_of(lambda d=data, k=kw: fit_mmrm(d, **k), reps)
        t_exact = best_of(lambda d=data, k=kw: fit_mmrm(d, **k, exact=True), reps)
        label = f"{n_subj} x {n_vis} ({len(data)} rows, {fit.n_params} covariance parameters)"
        print(f"\n{label}")
        print(f"  fit_mmrm (as R's optimiser)   {t_def * 1000:9.1f} ms   logLik {fit.loglik:.6f}   "
              f"converged {fit.converged}")
        print(f"  fit_mmrm (exact=True, Newton) {t_exact * 1000:9.1f} ms   logLik {exact.loglik:.6f}")
        if n_subj == 40:
            verdict = "meets" if min(t_def, t_exact) < 0.010 else "misses"
            print(f"  target under 10 ms: {verdict} it (default {t_def * 1000:.1f} ms, exact {t_exact * 1000:.1f} ms)")
        if why_not_r is None:
            try:
                t_r, ll_r = r_time(data, reps)
            except RuntimeError as exc:
                print(f"  R mmrm: failed ({exc})")
                continue
            print(f"  R mmrm                        {t_r * 1000:9.1f} ms   logLik {ll_r:.6f}")
            print(f"  ratio R / fit_mmrm: {t_r / t_def:.1f}x (default), {t_r / t_exact:.1f}x (exact=True); "
                  f"target 2x: {'met' if t_r / t_def >= 2 else 'missed'} (default)")
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
