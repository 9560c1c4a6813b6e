"""The global optimum on the boundary (issue 9): no fit of the boundary scan ends below R's best.

The scan (tests/data/boundary_scan/): 280 fits, 250 of them with a random
slope, that tend to end on a face of theta (no between-subject variance,
several slope SDs, 6 x 3 and 10 x 3 studies, near-singular slopes, jittered
times, clinics).  Each reference log-likelihood is the best of four lme4
optimisers, computed once in R by ``tests/data/boundary_scan/scan.py`` with
``fit_scan.R`` (``lmer(y ~ time + (time | subject) [+ (1 | clinic)], REML=...)``
with bobyqa, a tight bobyqa, Nelder-Mead and nloptwrap); the data are
regenerated here from the stored design and seed and checked by their hash.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import lmm_teach
from lmm_teach.design import PRESETS, Design
from lmm_teach.lmm.engine import fit_problem
from lmm_teach.lmm.faces import check
from lmm_teach.lmm.surface import optimizer_path, problem_of, profiled_deviance
from lmm_teach.simulate import simulate

SCAN = Path(__file__).parent / "data" / "boundary_scan"
_spec = importlib.util.spec_from_file_location("boundary_scan", SCAN / "scan.py")
scan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scan)
REFERENCE = json.loads((SCAN / "reference.json").read_text())["fits"]


def _fit(spec, data):
    return lmm_teach.fit_lmm(data, y="y", subject="subject", time="time", cluster=spec["cluster"],
                             random_slope=spec["random_slope"], method=spec["method"])


def test_scan_is_large_enough():
    assert len(REFERENCE) >= 250
    assert sum(s["random_slope"] for s in REFERENCE) >= 200
    assert sum(s["cluster"] is not None for s in REFERENCE) >= 40


def test_no_fit_ends_below_the_best_optimum_r_finds():
    gaps, stale = [], []
    for spec in REFERENCE:
        data = scan.simulate_fit(spec)
        if scan.data_hash(data) != spec["data_sha256"]:
            stale.append(spec["id"])
            continue
        m = _fit(spec, data)
        gaps.append((spec["loglik_r"] - m.loglik, spec["id"], spec["group"], m.converged))
    assert not stale, f"simulate() no longer gives the scan's data for fits {stale}: rerun scan.py"
    below = [g for g in gaps if g[0] > 1e-4]
    assert not below, f"{len(below)} fits end below R's best optimum: {sorted(below, reverse=True)[:5]}"
    # ... and every one of them converged (a boundary minimum is a minimum)
    assert all(g[3] for g in gaps), [g for g in gaps if not g[3]]


def test_issue_example_reaches_lme4s_optimum_with_correlation_minus_one():
    data = simulate(PRESETS["no between-subject variance"].replace(sd_slope=0.5), 0)
    m = lmm_teach.fit_lmm(data, y="y", subject="subject", time="time", random_slope=True)
    # lme4 (bobyqa): REML criterion 1270.698, theta (0.06378061, -0.11917010, 0)
    assert m.deviance == pytest.approx(1270.698140, abs=1e-5)
    assert np.allclose(m.theta, (0.06378061, -0.11917010, 0.0), atol=2e-6)
    assert m.converged
    corr = m.variance.dropna(subset=["var2"])["sdcor"].iloc[0]
    assert corr == pytest.approx(-1.0)


def test_the_saddle_is_not_called_converged():
    """The point where the old optimiser stopped (intercept variance 0) fails the second-order test."""
    data = simulate(PRESETS["no between-subject variance"].replace(sd_slope=0.5), 0)
    m = lmm_teach.fit_lmm(data, y="y", subject="subject", time="time", random_slope=True)
    pr = problem_of(m)
    saddle = pr.internal(np.array([0.0, 0.03807331, 0.09377031]))
    chk, _ = check(pr, saddle, reml=True)
    assert not chk.minimum
    assert "saddle" in chk.reason
    assert chk.direction is not None and chk.direction[0] >= 0
    # ... and the optimum passes both tests
    ok, _ = check(pr, pr.internal(np.array(m.theta)), reml=True)
    assert ok.minimum and ok.reason == ""


def test_non_converged_fit_says_so_in_words(monkeypatch):
    """A fit whose final point fails the conditions is converged=False with a learner's warning."""
    import lmm_teach.lmm.engine as engine
    from lmm_teach.lmm.faces import Check

    real = engine.check

    def failing(pr, theta, *, reml, pieces=None):
        chk, pc = real(pr, theta, reml=reml, pieces=pieces)
        return Check(chk.theta, chk.dev, False, 0.5, chk.min_curvature, None,
                     "the Newton step is still 0.5 (the gradient is not yet zero)"), pc

    monkeypatch.setattr(engine, "check", failing)
    m = lmm_teach.fit_lmm(simulate(Design(), 1), y="y", subject="subject", time="time", random_slope=True)
    assert not m.converged
    assert any(w.startswith("The fit did not converge") and "Newton step" in w for w in m.warnings)


def test_one_theta_conditions_on_floats_equal_the_matrix_ones():
    """check() tests one theta on Python floats: the same verdict, step, curvature, direction and
    words as the general code, inside the bound and on it, at minima, saddles and pushes."""
    from lmm_teach.lmm.faces import _conditions, _conditions_one

    m = lmm_teach.fit_lmm(simulate(Design(), 3), y="y", subject="subject", time="time")
    pr = problem_of(m)
    assert pr.n_theta == 1
    verdicts = set()
    for th0 in (0.0, float(m.theta[0]), 2.0):
        th = np.array([th0])
        f = float(profiled_deviance(m, th))
        for g in (0.0, 1e-9, -1e-9, 3e-3, -3e-3, -5.0, 5.0):
            for h in (0.0, 1e-12, -1e-12, 2.0, -2.0, 400.0):
                for exact in (True, False):
                    a = _conditions(pr, th, f, np.array([g]), np.array([[h]]), exact, True)
                    b = _conditions_one(pr, th, f, g, h, exact, True)
                    assert (a.minimum, a.reason) == (b.minimum, b.reason), (th0, g, h, exact)
                    assert a.newton_step == b.newton_step and a.min_curvature == b.min_curvature
                    assert (a.direction is None) == (b.direction is None)
                    if a.direction is not None:
                        assert np.array_equal(a.direction, b.direction)
                    verdicts.add(a.reason.split(" ")[1] if a.reason else "minimum")
    assert verdicts == {"minimum", "variance", "deviance", "Newton"}  # every branch was taken


def test_profiled_deviance_and_path():
    data = simulate(PRESETS["no between-subject variance"].replace(sd_slope=0.5), 0)
    m = lmm_teach.fit_lmm(data, y="y", subject="subject", time="time", random_slope=True)
    assert profiled_deviance(m, m.theta) == pytest.approx(m.deviance, abs=1e-9)
    grid = np.array([m.theta, (0.0, 0.0, 0.101205 / 3.0276503540974917 * 3.0276503540974917), (0.0, 0.0, 0.0)])
    devs = profiled_deviance(m, grid)
    assert devs.shape == (3,) and np.all(devs[1:] > m.deviance)
    path = optimizer_path(m)
    assert list(path.columns) == ["step", "stage", "subject.(Intercept)", "subject.time.(Intercept)",
                                  "subject.time", "deviance"]
    assert path["deviance"].iloc[-1] == pytest.approx(m.deviance, abs=1e-9)
    assert path["deviance"].min() == pytest.approx(m.deviance, abs=1e-9)
    assert (path["stage"] == "newton").sum() >= 3
    # every row's deviance is the profiled deviance at its theta
    thetas = path[["subject.(Intercept)", "subject.time.(Intercept)", "subject.time"]].to_numpy()
    assert np.allclose(profiled_deviance(m, thetas), path["deviance"], rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="theta needs 3 entries"):
        profiled_deviance(m, [1.0])


def test_fit_problem_trace_collects_iterates():
    data = simulate(Design(), 3)
    m = lmm_teach.fit_lmm(data, y="y", subject="subject", time="time")
    pr = problem_of(m)
    trace = []
    fit = fit_problem(pr, reml=True, trace=trace)
    assert trace and all(len(t) == 3 for t in trace)
    assert min(f for _, _, f in trace) == pytest.approx(fit.optimum.dev)


def test_fit_arrays_refuses_what_fit_lmm_refuses_with_the_same_words():
    """One rule (engine.unfittable_reason) for fit_lmm and the array engine (the Monte Carlo worker)."""
    import pandas as pd

    from lmm_teach.lmm.engine import fit_arrays, unfittable_reason
    from lmm_teach.validate import DataError

    rng = np.random.default_rng(0)
    subject = np.repeat(np.arange(10), 2)  # 20 rows, 20 random effects with a slope
    time = np.tile([0.0, 1.0], 10)
    y = rng.normal(size=20)
    X = np.column_stack([np.ones(20), time])
    why = unfittable_reason(20, 2, 10, random_slope=True, cluster=False)
    assert why is not None and "random slope needs more measurements (20)" in why
    with pytest.raises(ValueError) as arrays_err:
        fit_arrays(y, X, subject, time=time, random_slope=True)
    data = pd.DataFrame({"subject": subject, "time": time, "y": y})
    with pytest.raises(DataError) as frame_err:
        lmm_teach.fit_lmm(data, y="y", subject="subject", time="time", random_slope=True)
    assert str(arrays_err.value) == str(frame_err.value) == why
    # one more row and both fit
    assert unfittable_reason(21, 2, 10, random_slope=True, cluster=False) is None
    assert unfittable_reason(20, 2, 10, random_slope=False, cluster=False) is None
