"""fit_lmm(..., df="kenward-roger") against pbkrtest 0.5.2 (through lmerTest 3.1-3), and its properties.

Two sets of R numbers:

* the shared reference cases (tests/data/<case>.expected.json, copies of
  ../shared/reference): ``se_kr``, ``df_kr``, ``p_kr`` of
  ``summary(m, ddf = "Kenward-Roger")$coefficients`` for
  ``m <- lmer(y ~ time [* between] + (1 | subject) | (time | subject) [+ (1 | cluster)], REML = TRUE)``;
* tests/data/kenward_roger.expected.json, made by
  ``Rscript tests/data/kenward_roger_reference.R tests/data`` (the R calls are in
  that script): per case ``numeric`` (the model above), ``categorical``
  (``y ~ factor(visit) [* between] + (1 | subject) [+ (1 | cluster)]``) and, for the
  random-slope case, ``categorical_slope`` (``y ~ factor(visit) + (time | subject)``),
  each with ``summary(m, ddf = "Kenward-Roger")$coefficients`` (fixed) and
  ``anova(m, type = 3, ddf = "Kenward-Roger")`` (tests).

Tolerances as the reference README: SE, t, F 1e-3 relative; df 1e-2 relative;
p-values 2e-2 relative + 1e-4 absolute (check.py).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_teach import kenward_roger as kr
from lmm_teach.lmm import fit_lmm
from lmm_teach.lmm.kenward_roger import kr_pieces

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "cases.json").read_text())
NAMES = sorted(CASES)
KR_REF = json.loads((DATA / "kenward_roger.expected.json").read_text())
MODELS = [(name, model) for name in NAMES for model in KR_REF[name]]


@functools.cache
def fit(name: str, model: str, df: str = "kenward-roger"):
    o = CASES[name]
    data = pd.read_csv(DATA / f"{name}.csv")
    kw = dict(y=o["y"], subject=o["subject"], time=o["time"], visit=o["visit"], between=o["between"], df=df)
    if model == "numeric":
        return fit_lmm(data, cluster=o["cluster"], random_slope=o["random_slope"], **kw)
    if model == "categorical":
        return fit_lmm(data, cluster=o["cluster"], time_as="categorical", **kw)
    return fit_lmm(data, random_slope=True, time_as="categorical", **kw)


def assert_p(actual, expected):
    assert abs(actual - expected) <= 1e-4 + 2e-2 * abs(expected)


@pytest.mark.parametrize("name", NAMES)
def test_fixed_matches_shared_reference(name):
    # R: summary(lmer(<case formula>, REML = TRUE), ddf = "Kenward-Roger")$coefficients -> se_kr, df_kr, p_kr
    expected = json.loads((DATA / f"{name}.expected.json").read_text())["lmm"]["fixed"]
    f = fit(name, "numeric").fixed
    assert list(f.index) == [r["term"] for r in expected]
    for r in expected:
        row = f.loc[r["term"]]
        assert row["se"] == pytest.approx(r["se_kr"], rel=1e-3)
        assert row["df"] == pytest.approx(r["df_kr"], rel=1e-2)
        assert_p(row["p"], r["p_kr"])
        assert row["t"] == pytest.approx(r["estimate"] / r["se_kr"], rel=1e-3)


@pytest.mark.parametrize(("name", "model"), MODELS)
def test_fixed_and_type3_tests_match_pbkrtest(name, model):
    # R: see tests/data/kenward_roger_reference.R (summary(m, ddf = "Kenward-Roger"), anova(m, ddf = "Kenward-Roger"))
    ref = KR_REF[name][model]
    m = fit(name, model)
    assert len(m.fixed) == len(ref["fixed"])
    for (term, row), r in zip(m.fixed.iterrows(), ref["fixed"], strict=True):
        assert row["estimate"] == pytest.approx(r["estimate"], rel=1e-4, abs=1e-8), term
        assert row["se"] == pytest.approx(r["se"], rel=1e-3), term
        assert row["df"] == pytest.approx(r["df"], rel=1e-2), term
        assert_p(row["p"], r["p"])
    assert len(m.tests) == len(ref["tests"])
    for row, r in zip(m.tests.itertuples(), ref["tests"], strict=True):
        assert row.F == pytest.approx(r["F"], rel=1e-3), row.term
        assert row.df_num == r["df_num"]
        assert row.df_den == pytest.approx(r["df_den"], rel=1e-2), row.term
        assert_p(row.p, r["p"])


def test_trial_visit_by_arm_numbers():
    """One case written out: the visit x arm interaction of the categorical MAR trial."""
    t = fit("trial_mar", "categorical").tests.set_index("term")
    # R: anova(lmer(y ~ factor(visit) * arm + (1 | subject)), type = 3, ddf = "Kenward-Roger")["visit_f:arm", ]
    assert t.loc["visit:arm", "F"] == pytest.approx(6.3383585763006, rel=1e-6)
    assert t.loc["visit:arm", "df_den"] == pytest.approx(143.829499125512, rel=1e-5)
    assert t.loc["visit:arm", "p"] == pytest.approx(0.000100098578200704, rel=1e-4)


def test_balanced_random_intercept_kr_is_satterthwaite_is_anova():
    """Complete balanced data with a random intercept: KR's within-subject df equal
    Satterthwaite's and the RM-ANOVA's (n - 1)(T - 1), and its F is the unadjusted F."""
    kr_fit = fit("ri_balanced", "categorical")
    sat = fit("ri_balanced", "categorical", "satterthwaite")
    data = pd.read_csv(DATA / "ri_balanced.csv")
    n, T = data["subject"].nunique(), data["visit"].nunique()
    a, b = kr_fit.tests.iloc[0], sat.tests.iloc[0]
    assert a["df_num"] == T - 1
    assert a["df_den"] == pytest.approx((n - 1) * (T - 1), rel=1e-8)
    assert b["df_den"] == pytest.approx((n - 1) * (T - 1), rel=1e-6)
    assert a["F"] == pytest.approx(b["F"], rel=1e-8)
    # the visit contrasts: se unchanged by the adjustment
    within = [t for t in kr_fit.fixed.index if t != "(Intercept)"]
    assert np.allclose(kr_fit.fixed.loc[within, "se"], sat.fixed.loc[within, "se"], rtol=1e-8)
    assert np.allclose(kr_fit.fixed.loc[within, "df"], (n - 1) * (T - 1), rtol=1e-8)


def test_kr_se_is_never_below_the_plug_in():
    """Phi_A adds the variability of the estimated variances: se_KR >= se (here for every case)."""
    for name in NAMES:
        a, b = fit(name, "numeric").fixed["se"], fit(name, "numeric", "satterthwaite").fixed["se"]
        assert (a >= b * (1 - 1e-10)).all(), name


def test_per_block_pieces_equal_dense_algebra_with_crossed_clusters():
    """The block-by-block sums equal the dense n x n computation, also when a subject is seen in
    two clusters (blocks are then the connected subject-cluster components)."""
    rng = np.random.default_rng(5)
    subj = np.repeat(np.arange(9), 4)
    clus = np.repeat(np.arange(9) % 3, 4)
    clus[3] = 1  # subject 0's last visit in cluster 1: clusters 0 and 1 form one block
    t = np.tile(np.arange(4.0), 9) + rng.uniform(0, 0.3, 36)
    X = np.column_stack([np.ones(36), t, rng.normal(size=36)])
    theta, s2 = np.array([0.9, -0.1, 0.4, 0.7]), 1.3
    pc = kr_pieces(X, subj, time=t, random_slope=True, cluster=clus, theta=theta, sigma2=s2, beta=np.zeros(3))
    same = (subj[:, None] == subj[None, :]).astype(float)
    Gs = [same, same * (t[:, None] + t[None, :]), same * np.outer(t, t),
          (clus[:, None] == clus[None, :]).astype(float), np.eye(36)]
    V = sum(g * G for g, G in zip(pc.gamma, Gs, strict=True))
    Vi = np.linalg.inv(V)
    phi = np.linalg.inv(X.T @ Vi @ X)
    P = np.array([-(X.T @ Vi @ G @ Vi @ X) for G in Gs])
    Q = np.array([[X.T @ Vi @ Gi @ Vi @ Gj @ Vi @ X for Gj in Gs] for Gi in Gs])
    ktrace = np.array([[np.trace(Vi @ Gi @ Vi @ Gj) for Gj in Gs] for Gi in Gs])
    W = kr.reml_w(ktrace, phi, P, Q)
    assert pc.gamma == pytest.approx([s2 * 0.81, s2 * 0.9 * -0.1, s2 * (0.01 + 0.16), s2 * 0.49, s2])
    assert np.allclose(pc.phi, phi, rtol=1e-10)
    assert np.allclose(pc.P, P, rtol=1e-9, atol=1e-12)
    assert np.allclose(pc.W, W, rtol=1e-8)
    assert np.allclose(pc.phi_adj, kr.adjusted_vcov(phi, P, Q, W), rtol=1e-9)


def test_result_says_which_df():
    m = fit("trial_mar", "numeric")
    assert m.ddf == "Kenward-Roger"
    assert "Kenward-Roger's method" in m.summary()
    assert "Kenward-Roger df" in m.summary()
    assert m.to_dict()["ddf"] == "Kenward-Roger"
    assert fit("trial_mar", "numeric", "satterthwaite").ddf == "Satterthwaite"
    # the CI uses the KR se and df
    row = m.fixed.loc["armB"]
    from scipy import stats
    half = stats.t.ppf(0.975, row["df"]) * row["se"]
    assert row["ci_high"] - row["estimate"] == pytest.approx(half, rel=1e-10)


def test_kr_needs_reml_and_a_known_name():
    data = pd.read_csv(DATA / "seed_bp.csv")
    kw = dict(y="bp", subject="patient", time="time_num")
    with pytest.raises(ValueError, match="REML"):
        fit_lmm(data, method="ML", df="kenward-roger", **kw)
    with pytest.raises(ValueError, match="kenward-roger"):
        fit_lmm(data, df="containment", **kw)
    assert fit_lmm(data, df="Kenward-Roger", **kw).ddf == "Kenward-Roger"


def test_row_order_and_subject_labels_change_nothing():
    """Blocks are found from the codes, not from the row order: shuffled rows and renamed
    subjects give the same Kenward-Roger numbers (random slope, unequal visits per subject)."""
    o = CASES["rs_corr"]
    data = pd.read_csv(DATA / "rs_corr.csv")
    shuffled = data.sample(frac=1.0, random_state=7).reset_index(drop=True)
    shuffled[o["subject"]] = "p" + shuffled[o["subject"]].astype(str)
    kw = dict(y=o["y"], subject=o["subject"], time=o["time"], random_slope=True, df="kenward-roger")
    a, b = fit_lmm(data, **kw), fit_lmm(shuffled, **kw)
    cols = ["estimate", "se", "df", "p"]
    assert np.allclose(a.fixed[cols].to_numpy(), b.fixed[cols].to_numpy(), rtol=1e-6)
    assert np.allclose(a.tests[["F", "df_den"]].to_numpy(), b.tests[["F", "df_den"]].to_numpy(), rtol=1e-6)


def test_fit_lmm_docstring_examples_run():
    import doctest
    import importlib

    failed, attempted = doctest.testmod(importlib.import_module("lmm_teach.lmm.fit"))
    assert attempted >= 5 and failed == 0
