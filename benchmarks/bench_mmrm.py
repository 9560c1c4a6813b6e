"""How fast is fit_mmrm? Against R's mmrm (when Rscript and its mmrm package are installed) and statsmodels.

Two trials, two arms, a random intercept and slope per subject (so the
covariance of the visits is really unstructured), visit times jittered around
the schedule (irrelevant to the unstructured model, which uses the visit
label), 15 % of the visits after baseline missing completely at random:
40 subjects x 6 visits and 1000 subjects x 10 visits.  The model is
``y ~ visit * arm + us(visit | subject)`` by REML with Satterthwaite df.

Timed in the same run:

* ``fit_mmrm`` (validation, the fit, Satterthwaite df of the coefficients,
  type-III tests, LS-means and their differences; the result's tables are
  built when first read, so they are read once outside the timing and their
  cost printed apart): the first call on the data ("cold", after the import,
  whose time is printed too) and the median of the next calls ("warm"), with
  the default optimiser (R mmrm's own L-BFGS-B run, which reproduces R's
  numbers) and with ``exact=True`` (Newton's method with the exact Hessian);
* R's ``mmrm(...)`` in an Rscript process (``proc.time``), half its warm calls
  before ``fit_mmrm``'s and half after (the first call is the first process's);
* statsmodels has no MMRM: ``MixedLM`` has random effects plus an independent
  residual and no Satterthwaite df; ``GEE`` is not likelihood-based (valid
  under MCAR, not MAR).  A random effect per visit with an unrestricted
  covariance (``re_formula="0 + C(visit)"``) plus the residual spans the same
  marginal covariance with one parameter too many (the residual variance is
  not identified), and does reach the same REML log-likelihood, so that
  stand-in is timed, with Wald z tests in place of Satterthwaite's t.

BLAS runs one thread on every side.  Wall time is what a learner waits; the
machine is shared, so the median CPU time and the fastest warm call (the cost
of a call that had a core to itself) are printed beside it, and the ratios
are taken in the same run.  Run: ``python benchmarks/bench_mmrm.py
[--no-statsmodels]`` (statsmodels runs in a child process stopped after
``SM_LIMIT`` seconds).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SIZES = ((40, 6, 30), (1000, 10, 5))  # subjects, visits, warm repeats
SM_LIMIT = 120.0  # seconds a statsmodels child process may take
MODEL = dict(y="y", subject="subject", visit="visit", between="arm", covariance="us")
STATSMODELS_WORDS = ("statsmodels: no MMRM (MixedLM: random effects + independent residual, no Satterthwaite df; "
                     "GEE: not likelihood-based).  Stand-in timed: MixedLM with a random effect per visit, "
                     "re_formula='0 + C(visit)' (same marginal covariance, residual variance not identified; "
                     "Wald z tests)")


def simulate(n_subjects: int, n_visits: int, *, missing: float = 0.15, seed: int = 1) -> pd.DataFrame:
    """A two-arm trial: random intercept and slope, jittered times, ``missing`` of the later visits MCAR."""
    rng = np.random.default_rng(seed)
    s = np.repeat(np.arange(n_subjects), n_visits)
    v = np.tile(np.arange(n_visits), n_subjects)
    arm = np.where(np.arange(n_subjects) % 2 == 0, "A", "B")
    b0 = rng.normal(0.0, 5.0, n_subjects)
    b1 = rng.normal(0.0, 1.0, n_subjects)
    t = v + np.where(v > 0, rng.uniform(-0.2, 0.2, s.size), 0.0)
    effect = np.where(arm[s] == "B", -0.5 * t, 0.0)
    y = 100.0 - 1.0 * t + effect + b0[s] + b1[s] * t + rng.normal(0.0, 3.0, s.size)
    keep = (v == 0) | (rng.random(s.size) >= missing)
    return pd.DataFrame({"subject": [f"s{i:04d}" for i in s[keep]], "arm": arm[s][keep],
                         "visit": v[keep], "time": t[keep], "y": y[keep]})


class Timing:
    """Wall and CPU seconds of a first call and of repeated calls."""

    def __init__(self, first_wall: float, walls: list[float], cpus: list[float], best: float | None = None):
        self.first = first_wall
        self.wall = statistics.median(walls) if walls else first_wall
        self.cpu = statistics.median(cpus) if cpus else float("nan")
        # the fastest warm call: what a call costs when it has a core to itself
        self.best = best if best is not None else (min(walls) if walls else first_wall)

    def line(self, label: str, extra: str = "") -> str:
        return (f"  {label:<31s} cold {self.first * 1e3:7.1f} ms   warm median {self.wall * 1e3:7.1f} ms "
                f"(cpu {self.cpu * 1e3:7.1f}, best {self.best * 1e3:7.1f})   {extra}")


def timed(fn, repeats: int) -> tuple[Timing, object]:
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return Timing(first, walls, cpus), out


R_SCRIPT = r"""
suppressPackageStartupMessages(library(mmrm))
args <- commandArgs(TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
d$visit <- factor(d$visit, levels = sort(unique(d$visit)))
d$subject <- factor(d$subject)
d$arm <- factor(d$arm)
reps <- as.integer(args[2])
f <- y ~ visit * arm + us(visit | subject)
t0 <- proc.time()
m <- mmrm(f, data = d, reml = TRUE, method = "Satterthwaite")
first <- (proc.time() - t0)[["elapsed"]]
wall <- cpu <- numeric(reps)
for (i in seq_len(reps)) {
  t0 <- proc.time()
  m <- mmrm(f, data = d, reml = TRUE, method = "Satterthwaite")
  dt <- proc.time() - t0
  wall[i] <- dt[["elapsed"]]
  cpu[i] <- dt[["user.self"]] + dt[["sys.self"]]
}
cat(sprintf("%.6f %.6f\n", first, as.numeric(logLik(m))))
cat(sprintf("%.6f", wall), "\n")
cat(sprintf("%.6f", cpu), "\n")
"""


def r_available() -> str | None:
    """None when R's mmrm can be timed, else the reason in words."""
    if shutil.which("Rscript") is None:
        return "Rscript is not installed"
    proc = subprocess.run(["Rscript", "-e", "library(mmrm)"], capture_output=True, text=True)
    if proc.returncode != 0:
        return "R's mmrm package is not installed"
    return None


def r_run(data: pd.DataFrame, repeats: int) -> tuple[float, float, list[float], list[float]]:
    """One Rscript process: ``(first call, logLik, warm walls, warm cpus)`` in seconds."""
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
        head, walls, cpus = proc.stdout.strip().splitlines()
        first, ll = (float(x) for x in head.split())
        return first, ll, [float(x) for x in walls.split()], [float(x) for x in cpus.split()]


def r_time(runs: list) -> tuple[Timing, float]:
    """R's timing from runs made before and after fit_mmrm's (the machine's load drifts)."""
    walls = [w for run in runs for w in run[2]]
    cpus = [c for run in runs for c in run[3]]
    return Timing(runs[0][0], walls, cpus), runs[-1][1]


SM_SCRIPT = r"""
import sys, time, warnings
import pandas as pd
import statsmodels.formula.api as smf
warnings.simplefilter("ignore")
d = pd.read_csv(sys.argv[1])
for _ in range(int(sys.argv[2])):
    w0, c0 = time.perf_counter(), time.process_time()
    model = smf.mixedlm("y ~ C(visit) * arm", d, groups="subject", re_formula="0 + C(visit)")
    res = model.fit(reml=True, method=["lbfgs"])
    print(time.perf_counter() - w0, time.process_time() - c0, res.llf, int(res.converged), flush=True)
"""


def statsmodels_time(data: pd.DataFrame, calls: int, limit: float) -> tuple[Timing | None, str]:
    """MixedLM with a random effect per visit (the nearest statsmodels comes to the unstructured MMRM),
    in a child process stopped after ``limit`` seconds: ``(timing or None, words)``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "d.csv")
        data.to_csv(path, index=False)
        try:
            proc = subprocess.run([sys.executable, "-c", SM_SCRIPT, path, str(calls)], capture_output=True,
                                  text=True, timeout=limit)
            out = proc.stdout
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    rows = [line.split() for line in out.strip().splitlines()]
    if not rows:
        return None, f"did not finish one fit in {limit:.0f} s (stopped)"
    walls, cpus = [float(r[0]) for r in rows], [float(r[1]) for r in rows]
    ll, conv = float(rows[-1][2]), rows[-1][3] == "1"
    return Timing(walls[0], walls[1:], cpus[1:]), f"logLik {ll:.6f}{'' if conv else ' (not converged)'}"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str]) -> int:
    with_statsmodels = "--no-statsmodels" not in argv
    print(f"load average: {load()}  ({os.cpu_count()} cores, shared: ratios in the same run mean more than "
          "absolute times)")
    t0 = time.perf_counter()
    from lmm_teach.mmrm import fit_mmrm
    print(f"import lmm_teach.mmrm: {(time.perf_counter() - t0) * 1e3:.0f} ms")
    why_not_r = r_available()
    if why_not_r:
        print(f"R: skipped ({why_not_r})")
    print(STATSMODELS_WORDS if with_statsmodels else "statsmodels: skipped (--no-statsmodels)")
    for n_subj, n_vis, reps in SIZES:
        data = simulate(n_subj, n_vis)
        # R runs before and after fit_mmrm, half its calls each time: a drifting load hits both sides alike
        r_runs, r_error = [], None
        if why_not_r is None:
            try:
                r_runs.append(r_run(data, (reps + 1) // 2))
            except RuntimeError as exc:
                r_error = str(exc)
        t_def, fit = timed(lambda d=data: fit_mmrm(d, **MODEL), reps)
        t_exact, exact = timed(lambda d=data: fit_mmrm(d, **MODEL, exact=True), reps)
        t1 = time.perf_counter()
        fit.to_dict()  # every table
        t_tables = time.perf_counter() - t1
        print(f"\n{n_subj} x {n_vis}: {len(data)} rows, {fit.n_params} covariance parameters "
              f"(load {load()})")
        print(t_def.line("fit_mmrm (as R's optimiser)", f"logLik {fit.loglik:.6f} ({fit.optimizer})"))
        print(t_exact.line("fit_mmrm (exact=True, Newton)", f"logLik {exact.loglik:.6f}"))
        print(f"  {'':31s} the tables, built when first read: {t_tables * 1e3:.1f} ms")
        if n_subj == 40:
            print(f"  target under 10 ms: warm median {'met' if t_def.wall < 0.010 else 'missed'}, "
                  f"best call {'met' if t_def.best < 0.010 else 'missed'} (default {t_def.wall * 1e3:.1f} / "
                  f"{t_def.best * 1e3:.1f} ms, exact {t_exact.wall * 1e3:.1f} / {t_exact.best * 1e3:.1f} ms)")
        if r_runs and r_error is None:
            try:
                r_runs.append(r_run(data, reps // 2))
            except RuntimeError as exc:
                r_error = str(exc)
        if r_error is not None:
            print(f"  R mmrm: failed ({r_error})")
        elif r_runs:
            t_r, ll_r = r_time(r_runs)
            print(t_r.line("R mmrm (before and after)", f"logLik {ll_r:.6f}"))
            print(f"  R / fit_mmrm: warm wall {t_r.wall / t_def.wall:.1f}x default, "
                  f"{t_r.wall / t_exact.wall:.1f}x exact; cpu {t_r.cpu / t_def.cpu:.1f}x, "
                  f"{t_r.cpu / t_exact.cpu:.1f}x; best {t_r.best / t_def.best:.1f}x, "
                  f"{t_r.best / t_exact.best:.1f}x; target 2x: "
                  f"{'met' if t_r.wall / t_def.wall >= 2 else 'missed'} (default, warm wall)")
        if with_statsmodels:
            t_sm, words = statsmodels_time(data, 3 if n_subj < 100 else 1, SM_LIMIT)
            if t_sm is None:
                print(f"  {'statsmodels MixedLM stand-in':<31s} {words}")
            else:
                print(t_sm.line("statsmodels MixedLM stand-in", words))
                print(f"  statsmodels / fit_mmrm (wall{', first calls' if n_subj >= 100 else ''}): "
                      f"{(t_sm.wall / t_def.wall if n_subj < 100 else t_sm.first / t_def.first):.0f}x")
    print(f"\nload average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
