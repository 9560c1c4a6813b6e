"""fit_lmm against R: lme4 1.1-31 + lmerTest 3.1-3 on the seven reference cases.

The data and R's numbers are copies of ../shared/reference (tests/data/<case>.csv,
tests/data/<case>.expected.json; see that README).  What R ran, per case, with
the columns of tests/data/cases.json (the formula is in each expected.json):

    m  <- lmerTest::lmer(y ~ time [* between] + (1 | subject) | (time | subject)
                         [+ (1 | cluster)], data, REML = TRUE)
    summary(m)$coefficients          -> lmm.fixed   (estimate, se, Satterthwaite df, t, p)
    anova(m)                         -> lmm.tests   (type III, Satterthwaite)
    as.data.frame(VarCorr(m))        -> lmm.variance
    logLik(m)                        -> lmm.loglik  (REML)
    isSingular(m)                    -> lmm.singular
    lmerTest::ranova(m)              -> lmm.random_tests
    ranef(m)                         -> lmm.ranef   (conditional modes)
    m2 <- lmerTest::lmer(y ~ factor(visit) [* between] + (1 | subject), data, REML = TRUE)
    anova(m2)                        -> lmm_categorical.tests

Tolerances (the reference README): estimates 1e-4 relative; SE, t, F 1e-3;
Satterthwaite df 1e-2; variances 2e-3 relative (+ 1e-6 var(y) absolute, so a
boundary estimate must really be 0); correlations 5e-3 absolute; REML loglik
2e-3 absolute; BLUPs 2e-3 relative (+ 1e-4 sd(y) absolute, as check.py).
p-values as check.py: 2e-2 relative + 1e-4 absolute.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_teach.lmm import fit_lmm

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "cases.json").read_text())
NAMES = sorted(CASES)


def close(actual, expected, rtol=0.0, atol=0.0) -> bool:
    return abs(float(actual) - float(expected)) <= atol + rtol * abs(float(expected))


@functools.cache
def case(name: str):
    """(options, R's numbers, the data, sd(y), our numeric-time fit, our categorical fit)."""
    opts = CASES[name]
    expected = json.loads((DATA / f"{name}.expected.json").read_text())
    data = pd.read_csv(DATA / f"{name}.csv")
    kw = dict(y=opts["y"], subject=opts["subject"], time=opts["time"], visit=opts["visit"],
              between=opts["between"])
    numeric = fit_lmm(data, cluster=opts["cluster"], random_slope=opts["random_slope"], **kw)
    # R's categorical model has (1 | subject) only, even for nested_clinics
    categorical = fit_lmm(data, time_as="categorical", **kw)
    sd = float(data[opts["y"]].std())
    return opts, expected, data, sd, numeric, categorical


def r_term(name: str, opts: dict) -> str:
    """R's term name for ours: the categorical visit is 'visit_f' in the reference."""
    return name.replace(opts["visit"], "visit_f") if name.startswith(opts["visit"]) else name


@pytest.mark.parametrize("name", NAMES)
def test_counts_and_formula(name):
    opts, e, _, _, m, _ = case(name)
    assert m.n_obs == e["lmm"]["n_obs"]
    assert m.n_subjects == e["lmm"]["n_subjects"]
    assert m.formula == e["lmm"]["formula"]  # R: formula(m)
    assert m.converged


@pytest.mark.parametrize("name", NAMES)
def test_fixed_effects(name):
    # R: summary(lmerTest::lmer(<formula>, REML = TRUE))$coefficients
    opts, e, _, sd, m, _ = case(name)
    assert list(m.fixed.index) == [f["term"] for f in e["lmm"]["fixed"]]
    for ref in e["lmm"]["fixed"]:
        row = m.fixed.loc[ref["term"]]
        assert close(row["estimate"], ref["estimate"], 1e-4, 1e-6 * sd), (ref["term"], row["estimate"])
        assert close(row["se"], ref["se"], 1e-3), (ref["term"], row["se"])
        assert close(row["df"], ref["df"], 1e-2), (ref["term"], row["df"])
        assert close(row["t"], ref["t"], 1e-3, 1e-4), (ref["term"], row["t"])
        assert close(row["p"], ref["p"], 2e-2, 1e-4), (ref["term"], row["p"])


@pytest.mark.parametrize("name", NAMES)
def test_type3_tests(name):
    # R: anova(m)  (lmerTest, type III, Satterthwaite)
    opts, e, _, _, m, _ = case(name)
    got = m.tests.set_index("term")
    assert len(got) == len(e["lmm"]["tests"])
    for ref in e["lmm"]["tests"]:
        row = got.loc[ref["term"]]
        assert close(row["F"], ref["F"], 1e-3), (ref["term"], row["F"])
        assert row["df_num"] == ref["df_num"]
        assert close(row["df_den"], ref["df_den"], 1e-2), (ref["term"], row["df_den"])
        assert close(row["p"], ref["p"], 2e-2, 1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_variance_components(name):
    # R: as.data.frame(VarCorr(m))
    opts, e, _, sd, m, _ = case(name)
    got = m.variance
    assert len(got) == len(e["lmm"]["variance"])
    for i, ref in enumerate(e["lmm"]["variance"]):
        row = got.iloc[i]  # same rows in the same order, Residual last
        assert (row["group"], row["var1"], row["var2"]) == (ref["group"], ref["var1"], ref["var2"])
        if ref["var2"] is None:
            assert close(row["vcov"], ref["vcov"], 2e-3, 1e-6 * sd * sd), (ref, row["vcov"])
            assert close(row["sdcor"], ref["sdcor"], 2e-3, 1e-3 * sd), (ref, row["sdcor"])
        else:  # a correlation
            assert close(row["sdcor"], ref["sdcor"], 0.0, 5e-3), (ref, row["sdcor"])


@pytest.mark.parametrize("name", NAMES)
def test_loglik_and_singular(name):
    # R: logLik(m) (REML); isSingular(m)
    opts, e, _, _, m, _ = case(name)
    assert close(m.loglik, e["lmm"]["loglik"], 0.0, 2e-3), m.loglik
    assert close(m.deviance, e["lmm"]["reml_criterion"], 0.0, 4e-3)
    assert m.singular == e["lmm"]["singular"]


@pytest.mark.parametrize("name", NAMES)
def test_random_term_lrts(name):
    # R: lmerTest::ranova(m)
    opts, e, _, _, m, _ = case(name)
    got = m.random_tests.set_index("term")
    assert list(got.index) == [r["term"] for r in e["lmm"]["random_tests"]]
    for ref in e["lmm"]["random_tests"]:
        row = got.loc[ref["term"]]
        assert close(row["LRT"], ref["LRT"], 2e-3, 2e-3), (ref["term"], row["LRT"])
        assert close(row["loglik"], ref["loglik"], 0.0, 2e-3)
        assert row["df"] == ref["df"]
        assert close(row["p"], ref["p"], 2e-2, 1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_blups(name):
    # R: ranef(m)
    opts, e, _, sd, m, _ = case(name)
    assert set(m.ranef) == set(e["lmm"]["ranef"])
    for group, ref in e["lmm"]["ranef"].items():
        got = m.ranef[group]
        assert [str(v) for v in got.index] == [str(v) for v in ref["level"]]
        for term, values in ref.items():
            if term == "level":
                continue
            np.testing.assert_allclose(got[term].to_numpy(), values, rtol=2e-3, atol=1e-4 * sd)


@pytest.mark.parametrize("name", NAMES)
def test_categorical_time_f_tests(name):
    # R: anova(lmerTest::lmer(y ~ factor(visit) [* between] + (1 | subject), REML = TRUE))
    opts, e, _, _, _, mc = case(name)
    got = mc.tests.set_index("term")
    assert len(got) == len(e["lmm_categorical"]["tests"])
    for ref in e["lmm_categorical"]["tests"]:
        ours = ref["term"].replace("visit_f", opts["visit"])
        row = got.loc[ours]
        assert close(row["F"], ref["F"], 1e-3), (ours, row["F"])
        assert row["df_num"] == ref["df_num"]
        assert close(row["df_den"], ref["df_den"], 1e-2), (ours, row["df_den"])
        assert close(row["p"], ref["p"], 2e-2, 1e-4)


def test_seed_bp_categorical_f_equals_afex():
    # R: afex::aov_ez("patient", "bp", bp, within = "time")  -> F(2, 18) = 135.164 (also the LMM's F)
    _, _, _, _, _, mc = case("seed_bp")
    row = mc.tests.set_index("term").loc["time"]
    assert row["F"] == pytest.approx(135.164, abs=5e-4)
    assert row["df_num"] == 2 and row["df_den"] == pytest.approx(18, abs=1e-4)
    assert list(mc.fixed.index) == ["(Intercept)", "timeweek2", "timeweek4"]


def test_nested_categorical_with_the_clinic_term_gives_the_same_f():
    # Balanced and complete: the visit contrasts are within subjects, so adding
    # (1 | clinic) leaves the F of R's model without it (28.5529 on 3 and 177 df).
    opts, e, data, _, _, _ = case("nested_clinics")
    m = fit_lmm(data, y="y", subject="subject", time="time", visit="visit", cluster="clinic", time_as="categorical")
    ref = e["lmm_categorical"]["tests"][0]
    row = m.tests.set_index("term").loc["visit"]
    assert close(row["F"], ref["F"], 1e-3) and close(row["df_den"], ref["df_den"], 1e-2)


def test_json_contract_matches_the_reference_keys():
    # The "lmm" part of check.py's contract, on one case with every kind of row.
    opts, e, _, _, m, _ = case("rs_corr")
    d = m.to_dict()
    json.dumps(d)  # plain Python only
    for key in ("n_obs", "n_subjects", "fixed", "variance", "loglik", "singular", "random_tests", "ranef"):
        assert key in d
    assert {"term", "estimate", "se", "df", "t", "p", "ci_low", "ci_high"} <= set(d["fixed"][0])
    assert d["variance"][2]["var2"] == "time" and d["variance"][3]["var1"] is None
    assert d["ranef"]["subject"]["level"][:2] == ["s000", "s001"]
    assert set(d["ranef"]["subject"]) == {"level", "(Intercept)", "time"}
