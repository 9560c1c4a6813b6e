"""LMMResult's tables are built on first access: same frames as built eagerly, immutable, picklable.

fit_lmm computes every number eagerly and keeps the recipes of its tables
(lmm_teach.lmm.lazy); these tests build the same tables eagerly, from the
documented schema (docs/api.md) and the engine's arrays, with plain pandas.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest

from lmm_teach.lmm import LMMResult, fit_lmm
from lmm_teach.lmm.derivatives import analytic
from lmm_teach.lmm.deviance import build_problem, profile
from lmm_teach.lmm.lazy import Deferred
from lmm_teach.lmm.satterthwaite import richardson
from lmm_teach.lmm.terms import factor_codes, sorted_codes
from lmm_teach.validate import Columns, check_long

TABLES = ("fixed", "cov_fixed", "tests", "variance", "ranef", "fitted", "random_tests", "data")


def trial() -> pd.DataFrame:
    """Two arms, MAR dropout (tests/data/trial_mar.csv) with two outcomes made missing and a
    non-default row index, so that `fitted` and `data` must keep the labels of the rows used."""
    data = pd.read_csv("tests/data/trial_mar.csv")
    data.index = data.index * 10 + 3
    data.loc[data.index[[4, 9]], "y"] = np.nan
    return data


FITS = {
    "slope": dict(y="y", subject="subject", time="time", between="arm", random_slope=True),
    "categorical": dict(y="y", subject="subject", time="time", visit="visit", between="arm", time_as="categorical"),
}


def eager_tables(data: pd.DataFrame, m: LMMResult) -> dict:
    """The tables as docs/api.md describes them, built row by row from m's numbers."""
    c = m.columns
    fx = m.__dict__["fixed"]
    assert isinstance(fx, Deferred), "fixed was built before it was read"
    table, names = fx.args
    fixed = pd.DataFrame([dict(zip(["estimate", "se", "df", "t", "p", "ci_low", "ci_high", "p_wald"], row,
                                   strict=True)) for row in table.tolist()],
                         index=pd.Index(list(names), dtype=object, name="term"))
    fixed.columns = fixed.columns.astype(object)
    V = m.__dict__["cov_fixed"].args[0]
    cov = pd.DataFrame(V, index=pd.Index(list(names), dtype=object), columns=pd.Index(list(names), dtype=object))
    test_names, test_values = m.__dict__["tests"].args
    tests = pd.DataFrame([{"term": n, "F": v[0], "df_num": v[1], "df_den": v[2], "p": v[3]}
                          for n, v in zip(test_names, test_values.tolist(), strict=True)])
    tests.columns = tests.columns.astype(object)
    (rows,) = m.__dict__["variance"].args
    variance = pd.DataFrame({"group": [r[0] for r in rows], "var1": pd.Series([r[1] for r in rows], dtype=object),
                             "var2": pd.Series([r[2] for r in rows], dtype=object),
                             "vcov": [float(r[3]) for r in rows], "sdcor": [float(r[4]) for r in rows]})
    variance.columns = variance.columns.astype(object)
    used = check_long(data, c)
    # BLUPs and fitted values, recomputed from the definitions (fixed part + subject effects)
    ranef = {}
    for group, values, levels, terms in m.__dict__["ranef"].args[0]:
        ranef[group] = pd.DataFrame(np.asarray(values).reshape(len(levels), -1),
                                    index=pd.Index(pd.unique(np.sort(used[group].to_numpy())), name=group),
                                    columns=pd.Index(list(terms), dtype=object))
    fitted = pd.Series(m.__dict__["fitted"].args[0], index=used.index, name="fitted")
    terms, loglik, lrt, df, p = m.__dict__["random_tests"].args
    random_tests = pd.DataFrame([{"term": t, "loglik": a, "LRT": b, "df": int(d), "p": e}
                                 for t, a, b, d, e in zip(terms, loglik, lrt, df, p, strict=True)])
    random_tests.columns = random_tests.columns.astype(object)
    return dict(fixed=fixed, cov_fixed=cov, tests=tests, variance=variance, ranef=ranef, fitted=fitted,
                random_tests=random_tests, data=used)


def assert_tables_equal(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_tables_equal(a[k], b[k])
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True)
    else:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        assert a.columns.dtype == b.columns.dtype and list(a.dtypes) == list(b.dtypes)


@pytest.mark.parametrize("kind", sorted(FITS))
def test_lazy_tables_equal_eagerly_built_ones(kind):
    data = trial()
    m = fit_lmm(data, **FITS[kind])
    expected = eager_tables(data, m)  # reads the recipes before any table is built
    for name in TABLES:
        assert isinstance(m.__dict__[name], Deferred)
        assert_tables_equal(getattr(m, name), expected[name])
    # the fitted values are X beta + Z b, row by row (a check on the numbers, not only the frame)
    fx, re = m.fixed["estimate"], m.ranef["subject"]
    rows = m.data
    if kind == "slope":
        b = (rows["arm"] == "B").to_numpy(float)
        X = np.column_stack([np.ones(len(rows)), rows["time"], b, rows["time"] * b])
        own = re.loc[rows["subject"]].to_numpy()
        manual = X @ fx.to_numpy() + own[:, 0] + own[:, 1] * rows["time"].to_numpy()
        np.testing.assert_allclose(m.fitted.to_numpy(), manual, rtol=1e-12)
    assert m.n_obs == len(data) - 2 and list(m.fitted.index) == list(data.index[data["y"].notna()])


def test_a_table_is_built_once_and_the_result_stays_frozen():
    m = fit_lmm(trial(), **FITS["slope"])
    first = m.fixed
    assert m.fixed is first and isinstance(m.__dict__["fixed"], pd.DataFrame)
    assert isinstance(m.__dict__["variance"], Deferred)  # the others are still recipes
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.fixed = first.copy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.variance = None
    assert [f.name for f in dataclasses.fields(LMMResult)][:8] == ["formula", "method", "n_obs", "n_subjects",
                                                                    "columns", "fixed", "cov_fixed", "tests"]


@pytest.mark.parametrize("touch", [False, True])
def test_results_pickle_and_copy_before_and_after_their_tables_are_built(touch):
    m = fit_lmm(trial(), **FITS["slope"])
    if touch:
        m.summary()
    expected = fit_lmm(trial(), **FITS["slope"])
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m), copy.copy(m)):
        assert type(clone) is LMMResult and repr(clone) == repr(expected)
        for name in TABLES:
            assert_tables_equal(getattr(clone, name), getattr(expected, name))
        assert clone.summary() == expected.summary() and clone.to_dict() == expected.to_dict()
    # dataclasses.replace reads every field (building the tables) and keeps them
    other = dataclasses.replace(m, warnings=("changed",))
    assert other.warnings == ("changed",)
    assert_tables_equal(other.variance, expected.variance)


def test_the_result_is_a_snapshot_of_the_data_at_fit_time():
    data = trial()
    m = fit_lmm(data, **FITS["slope"])
    before = check_long(data, m.columns)
    data.loc[data.index[0], "y"] = 1e6  # the caller changes their frame afterwards
    data.loc[data.index[1], "time"] = 99.0
    pd.testing.assert_frame_equal(m.data, before)
    assert m.fitted.abs().max() < 1e3


def test_the_data_table_is_what_check_long_returns():
    data = trial()
    cols = Columns(y="y", subject="subject", time="time", visit="visit", between="arm")
    m = fit_lmm(data, y="y", subject="subject", time="time", visit="visit", between="arm")
    assert_tables_equal(m.data, check_long(data, cols))


@pytest.mark.parametrize("values", [
    np.array(["p10", "p2", "p1", "p2"], dtype=object),
    np.array([30, 4, 4, 12]),
    np.array([2.5, 1.0, 2.5]),
    np.array([1, "a", 2, "a"], dtype=object),  # mixed types: pandas' own order
    pd.Categorical(["b", "a", "b"], categories=["c", "b", "a"]),  # a categorical keeps its order
])
def test_subject_codes_from_the_checks_factorisation_equal_a_sorted_factorisation(values):
    codes, uniques = pd.factorize(values, sort=False)
    ours, ours_levels = sorted_codes(codes, uniques, values)
    theirs, their_levels = factor_codes(values)
    np.testing.assert_array_equal(ours, theirs)
    pd.testing.assert_index_equal(pd.Index(ours_levels), pd.Index(their_levels), exact=True)


# --------------------------------------------------------------------------- exact derivatives
def unbalanced(seed: int):
    """1-6 visits per subject at jittered times, rows shuffled: many patterns."""
    rng = np.random.default_rng(seed)
    n_i = rng.integers(1, 7, 18)
    subject = np.repeat(np.arange(18), n_i)
    time = np.concatenate([np.sort(rng.uniform(0, 5, k)) for k in n_i])
    y = 3 + 0.5 * time + rng.normal(0, 1, 18)[subject] + rng.normal(0, 0.4, 18)[subject] * time \
        + rng.normal(0, 0.7, subject.size)
    X = np.column_stack([np.ones(subject.size), time, (subject % 2).astype(float)])
    return y, X, subject, time


@pytest.mark.parametrize("random_slope", [False, True])
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("where", ["interior", "boundary"])
def test_exact_derivatives_equal_richardson_differences(random_slope, reml, where):
    # The Satterthwaite df use these (lmerTest: numDeriv's Richardson extrapolation of the same functions).
    y, X, subject, time = unbalanced(4)
    pr = build_problem(y, X, subject, time=time, random_slope=random_slope)
    theta = np.array([0.8, -0.3, 0.5])[:pr.n_theta]
    j = pr.n_theta - 1  # the intercept's SD ratio, or the slope's own part c of T = [[a, 0], [b, c]]
    if where == "boundary":
        theta[j] = 0.0
    p = pr.p

    def parts(th):
        out = profile(pr, th, reml=reml)
        return out["D0"], out["r2"], np.linalg.inv(out["Q"][:, :p, :p]), out["dev"]

    (gD0, gr2, gPb, gdev), (HD0, Hr2, _, Hdev), (D0, r2, Pb, dev) = richardson(parts, theta)
    pc = analytic(pr, theta, reml=reml)
    assert pc.dev == pytest.approx(float(dev), rel=1e-13) and pc.r2 == pytest.approx(float(r2), rel=1e-12)
    np.testing.assert_allclose(pc.Pb, Pb, rtol=1e-11)
    # Richardson's own error is ~1e-10 relative inside, up to ~3e-5 at the boundary (where its
    # step is an absolute 1e-4 and the deviance is quartic in theta)
    tol = 1e-8 if where == "interior" else 5e-5
    for ours, theirs in ((pc.gD0, gD0), (pc.gr2, gr2), (pc.gPb, gPb), (pc.grad, gdev),
                         (pc.HD0, HD0), (pc.Hr2, Hr2), (pc.hess, Hdev)):
        scale = max(np.abs(theirs).max(), 1.0)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=tol * scale)
    # and the exact Hessian is the derivative of the exact gradient (central differences, h = 1e-5)
    h = 1e-5
    steps = [(analytic(pr, theta + h * e, reml=reml).grad - analytic(pr, theta - h * e, reml=reml).grad) / (2 * h)
             for e in np.eye(pr.n_theta)]
    np.testing.assert_allclose(pc.hess, np.array(steps), rtol=0, atol=1e-6 * np.abs(pc.hess).max())
    if where == "boundary":  # the deviance is even in that theta: its slope there is exactly 0
        assert pc.grad[j] == 0.0 and np.all(pc.gPb[j] == 0.0) and pc.hess[j, j] != 0.0
