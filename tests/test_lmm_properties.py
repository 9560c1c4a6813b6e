"""Properties of fit_lmm that need no R: invariances, large samples, ANOVA algebra, statsmodels, inputs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from lmm_teach.lmm import LMMResult, fit_lmm
from lmm_teach.validate import DataError

DATA = "tests/data"


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(f"{DATA}/{name}.csv")


def simulate(n_subjects: int, n_visits: int, *, seed: int, sd0=5.0, sd1=1.0, corr=0.3, sigma=3.0,
             beta=(100.0, -1.0), arm_effects=(0.0, 0.0), missing=0.0) -> pd.DataFrame:
    """Correlated random intercepts and slopes, two arms, optional MCAR visits (numpy only)."""
    rng = np.random.default_rng(seed)
    cov = np.array([[sd0**2, corr * sd0 * sd1], [corr * sd0 * sd1, sd1**2]])
    b = rng.multivariate_normal([0.0, 0.0], cov, n_subjects)
    arm = rng.integers(0, 2, n_subjects)
    s = np.repeat(np.arange(n_subjects), n_visits)
    t = np.tile(np.arange(n_visits, dtype=float), n_subjects)
    a = arm[s]
    y = (beta[0] + arm_effects[0] * a + b[s, 0] + (beta[1] + arm_effects[1] * a + b[s, 1]) * t
         + rng.normal(0.0, sigma, s.size))
    keep = (t == 0) | (rng.random(s.size) >= missing)
    return pd.DataFrame({"subject": [f"p{i:04d}" for i in s], "arm": np.where(a == 1, "B", "A"),
                         "visit": t.astype(int), "time": t, "y": y})[keep].reset_index(drop=True)


def assert_same_fit(a: LMMResult, b: LMMResult, rtol=1e-6):
    pd.testing.assert_frame_equal(a.fixed, b.fixed, rtol=rtol, atol=1e-9)
    pd.testing.assert_frame_equal(a.variance, b.variance, rtol=rtol, atol=1e-9)
    pd.testing.assert_frame_equal(a.tests, b.tests, rtol=rtol, atol=1e-9)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-7)
    np.testing.assert_allclose(a.random_tests["LRT"], b.random_tests["LRT"], rtol=rtol, atol=1e-7)


# --------------------------------------------------------------------------- invariances
@pytest.mark.parametrize("name,kw", [
    ("rs_corr", dict(random_slope=True)),
    ("trial_mar", dict(between="arm")),
    ("nested_clinics", dict(cluster="clinic")),
])
def test_shuffling_rows_and_relabelling_subjects_change_nothing(name, kw):
    data = read(name)
    base = fit_lmm(data, y="y", subject="subject", time="time", **kw)
    rng = np.random.default_rng(7)
    shuffled = data.sample(frac=1.0, random_state=3)
    ids = data["subject"].unique()
    relabel = dict(zip(ids, [f"id{k}" for k in rng.permutation(len(ids))], strict=True))
    shuffled = shuffled.assign(subject=shuffled["subject"].map(relabel))
    other = fit_lmm(shuffled, y="y", subject="subject", time="time", **kw)
    assert_same_fit(base, other)
    # the BLUPs follow their subjects; the fitted values follow their rows
    back = {v: k for k, v in relabel.items()}
    re = other.ranef["subject"].rename(index=back).sort_index()
    np.testing.assert_allclose(re.to_numpy(), base.ranef["subject"].sort_index().to_numpy(), rtol=1e-5, atol=1e-7)
    pd.testing.assert_series_equal(other.fitted.sort_index(), base.fitted, rtol=1e-7)


def test_type3_tests_do_not_depend_on_the_reference_arm():
    # SAS/lmerTest type III: the main effect of visit is averaged over the arms, so
    # which arm is the reference changes the coefficients but no F test.
    data = read("trial_mar")
    swapped = data.assign(arm=data["arm"].map({"A": "Z", "B": "B"}))  # B becomes the reference
    for time_as in ("numeric", "categorical"):
        a = fit_lmm(data, y="y", subject="subject", time="time", visit="visit", between="arm", time_as=time_as)
        b = fit_lmm(swapped, y="y", subject="subject", time="time", visit="visit", between="arm", time_as=time_as)
        ta, tb = a.tests.set_index("term"), b.tests.set_index("term")
        rows = ["visit", "visit:arm"] if time_as == "categorical" else ["time", "time:arm"]
        pd.testing.assert_frame_equal(ta.loc[rows], tb.loc[rows], rtol=1e-6)
        assert a.fixed.index[-1].endswith("armB") and b.fixed.index[-1].endswith("armZ")


@pytest.mark.parametrize("unit", [1e-3, 7.0, 365.0, 1e4])
def test_the_unit_of_time_changes_nothing_but_the_slope_scale(unit):
    # days instead of weeks, and extreme units: the optimiser works on a scale-free time
    data = read("rs_corr")
    base = fit_lmm(data, y="y", subject="subject", time="time", random_slope=True)
    m = fit_lmm(data.assign(time=data["time"] * unit), y="y", subject="subject", time="time", random_slope=True)
    # the REML likelihood holds log det(X'V^-1 X): one column of X is scaled, so -log(unit)
    assert m.converged and m.loglik == pytest.approx(base.loglik - np.log(unit), abs=1e-6)
    assert m.fixed.loc["time", "estimate"] * unit == pytest.approx(base.fixed.loc["time", "estimate"], rel=1e-6)
    assert m.fixed.loc["time", "df"] == pytest.approx(base.fixed.loc["time", "df"], rel=1e-5)
    assert m.variance.loc[1, "vcov"] * unit**2 == pytest.approx(base.variance.loc[1, "vcov"], rel=1e-5)
    assert m.variance.loc[2, "sdcor"] == pytest.approx(base.variance.loc[2, "sdcor"], abs=1e-6)
    np.testing.assert_allclose(m.ranef["subject"]["time"] * unit, base.ranef["subject"]["time"], rtol=1e-5)
    assert m.random_tests.loc[0, "LRT"] == pytest.approx(base.random_tests.loc[0, "LRT"], abs=1e-6)
    # lme4's isSingular is unit-dependent (theta < 1e-4): it fires for tiny units, with an explanation
    assert m.singular == (unit == 1e4)
    assert all("Singular fit" not in w for w in m.warnings)


# --------------------------------------------------------------------------- large samples
def test_a_large_sample_recovers_the_truth():
    truth = dict(sd0=5.0, sd1=1.0, corr=0.3, sigma=3.0, beta=(100.0, -1.0), arm_effects=(2.0, -0.5))
    data = simulate(1500, 6, seed=11, missing=0.2, **truth)
    m = fit_lmm(data, y="y", subject="subject", time="time", between="arm", random_slope=True)
    want = {"(Intercept)": 100.0, "time": -1.0, "armB": 2.0, "time:armB": -0.5}
    for term, value in want.items():
        est, se = m.fixed.loc[term, ["estimate", "se"]]
        assert abs(est - value) < 4 * se, term
        lo, hi = m.fixed.loc[term, ["ci_low", "ci_high"]]
        assert lo < est < hi
    # about 4 standard errors of each variance estimate at this sample size
    v = m.variance
    assert v.loc[0, "vcov"] == pytest.approx(25.0, rel=0.15)
    assert v.loc[1, "vcov"] == pytest.approx(1.0, rel=0.25)
    assert v.loc[2, "sdcor"] == pytest.approx(0.3, abs=0.12)
    assert v.loc[3, "vcov"] == pytest.approx(9.0, rel=0.08)
    assert m.converged and not m.singular
    assert m.icc == pytest.approx(25.0 / 34.0, abs=0.03)  # at time 0: sd0^2 / (sd0^2 + sigma^2)
    # nearly 1500 subjects: the df of the between-subject contrasts are in the thousands
    assert m.fixed.loc["armB", "df"] > 1000


# --------------------------------------------------------------------------- ANOVA algebra
def test_balanced_categorical_lmm_f_equals_the_rm_anova_f_by_hand():
    data = read("ri_balanced")
    m = fit_lmm(data, y="y", subject="subject", time="time", visit="visit", time_as="categorical")
    Y = data.pivot(index="subject", columns="visit", values="y").to_numpy()
    n, k = Y.shape
    grand = Y.mean()
    ss_visit = n * ((Y.mean(axis=0) - grand) ** 2).sum()
    ss_subject = k * ((Y.mean(axis=1) - grand) ** 2).sum()
    ss_error = ((Y - grand) ** 2).sum() - ss_visit - ss_subject
    f_anova = (ss_visit / (k - 1)) / (ss_error / ((n - 1) * (k - 1)))
    row = m.tests.set_index("term").loc["visit"]
    assert row["F"] == pytest.approx(f_anova, rel=1e-7)
    assert row["df_num"] == k - 1
    assert row["df_den"] == pytest.approx((n - 1) * (k - 1), rel=1e-6)
    # and the random intercept variance is the ANOVA estimate (MS_subject - MS_error) / k
    ms_subject, ms_error = ss_subject / (n - 1), ss_error / ((n - 1) * (k - 1))
    assert m.variance.loc[0, "vcov"] == pytest.approx((ms_subject - ms_error) / k, rel=1e-6)
    assert m.variance.loc[1, "vcov"] == pytest.approx(ms_error, rel=1e-6)


# --------------------------------------------------------------------------- statsmodels
@pytest.mark.parametrize("name,kw", [
    ("rs_corr", dict(random_slope=True)),
    ("trial_mar", dict(between="arm")),
    ("nested_clinics", dict(cluster="clinic")),
])
def test_agrees_with_statsmodels_mixedlm(name, kw):
    m = fit_lmm(read(name), y="y", subject="subject", time="time", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = m.to_statsmodels()
    # patsy names: Intercept, time, C(arm)[T.B], time:C(arm)[T.B]
    names = {"Intercept": "(Intercept)", "time": "time", "C(arm)[T.B]": "armB", "time:C(arm)[T.B]": "time:armB"}
    for sm_name, value in sm.fe_params.items():
        assert m.fixed.loc[names[sm_name], "estimate"] == pytest.approx(value, rel=1e-5)
        # statsmodels' SEs invert the joint information of beta and the variance
        # parameters; lme4's (and ours) are sigma^2 (X'V^-1 X)^-1: up to ~0.5 % apart here
        assert m.fixed.loc[names[sm_name], "se"] == pytest.approx(sm.bse_fe[sm_name], rel=1e-2)
    assert m.sigma**2 == pytest.approx(sm.scale, rel=1e-4)
    v = m.variance.set_index(["group", "var1"])
    if "cluster" in kw:  # groups = clinic, the subject is a variance component
        assert v.loc[("clinic", "(Intercept)"), "vcov"] == pytest.approx(sm.cov_re.iloc[0, 0], rel=1e-3)
        assert v.loc[("subject", "(Intercept)"), "vcov"] == pytest.approx(sm.vcomp[0], rel=1e-3)
    else:
        assert m.variance.loc[0, "vcov"] == pytest.approx(sm.cov_re.iloc[0, 0], rel=1e-3)
        if kw.get("random_slope"):
            assert m.variance.loc[1, "vcov"] == pytest.approx(sm.cov_re.iloc[1, 1], rel=1e-3)
            assert m.variance.loc[2, "vcov"] == pytest.approx(sm.cov_re.iloc[0, 1], rel=1e-3)
    # statsmodels' REML log-likelihood is lme4's
    assert m.loglik == pytest.approx(sm.llf, abs=2e-3)


def test_ml_loglik_matches_statsmodels_reml_false():
    # lme4: logLik(lmer(y ~ time + (1 | subject), REML = FALSE)); the cross-check is statsmodels' ML fit
    data = read("ri_mcar_unequal")
    m = fit_lmm(data, y="y", subject="subject", time="time", method="ML")
    assert m.method == "ML" and m.formula == "y ~ time + (1 | subject)"
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = smf.mixedlm("y ~ time", data, groups="subject").fit(reml=False)
    assert m.loglik == pytest.approx(sm.llf, abs=2e-3)
    assert m.loglik == pytest.approx(-552.0355145, abs=2e-3)
    np.testing.assert_allclose(m.fixed["estimate"], sm.fe_params, rtol=1e-5)
    # ML divides by n: a smaller residual variance than REML's
    reml = fit_lmm(data, y="y", subject="subject", time="time")
    assert m.sigma < reml.sigma
    # ranova of an ML fit compares ML likelihoods
    assert m.random_tests.loc[0, "loglik"] < m.loglik


def test_to_statsmodels_and_its_code_fit_the_same_model():
    data = read("seed_bp")
    m = fit_lmm(data, y="bp", subject="patient", time="time_num", visit="time", time_as="categorical")
    code = m.statsmodels_code()
    assert "smf.mixedlm('bp ~ C(time)', data, groups='patient')" in code and "reml=True" in code
    assert code.startswith("import pandas as pd\nimport statsmodels.formula.api as smf\n")
    assert "pd.read_csv('bp.csv')" in m.statsmodels_code(csv="bp.csv")
    scope = {"data": data}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code.replace("print(result.summary())", ""), "<code>", "exec"), scope)
        sm = m.to_statsmodels()
    assert scope["result"].llf == pytest.approx(sm.llf, abs=1e-8)
    assert sm.llf == pytest.approx(m.loglik, abs=2e-3)
    np.testing.assert_allclose(sm.fe_params.to_numpy(), m.fixed["estimate"].to_numpy(), rtol=1e-5)


def test_statsmodels_cannot_nest_random_slopes_in_clusters():
    data = read("nested_clinics")
    m = fit_lmm(data, y="y", subject="subject", time="time", cluster="clinic", random_slope=True)
    assert m.formula == "y ~ time + (time | subject) + (1 | clinic)"
    assert list(m.random_tests["term"]) == ["time in (time | subject)", "(1 | clinic)"]
    assert list(m.random_tests["df"]) == [2, 1]
    with pytest.raises(NotImplementedError, match="statsmodels"):
        m.to_statsmodels()


# --------------------------------------------------------------------------- the result
def test_result_contents_and_json():
    data = read("trial_mar")
    m = fit_lmm(data, y="y", subject="subject", time="time", visit="visit", between="arm")
    assert list(m.fixed.columns) == ["estimate", "se", "df", "t", "p", "ci_low", "ci_high", "p_wald"]
    assert list(m.tests.columns) == ["term", "F", "df_num", "df_den", "p"]
    assert list(m.random_tests.columns) == ["term", "loglik", "LRT", "df", "p"]
    assert list(m.cov_fixed.index) == list(m.fixed.index)
    np.testing.assert_allclose(np.sqrt(np.diag(m.cov_fixed)), m.fixed["se"])
    # the Wald z p-value is smaller than the t p-value (normal tails are thinner)
    assert (m.fixed["p_wald"] <= m.fixed["p"]).all()
    assert m.fitted.index.equals(data.index) and m.fitted.name == "fitted"
    assert m.lme4_formula == m.formula == "y ~ time * arm + (1 | subject)"
    d = m.to_dict()
    text = json.dumps(d)  # plain Python, NaN-free
    assert "NaN" not in text
    assert d["fixed"][3]["term"] == "time:armB" and isinstance(d["fixed"][0]["estimate"], float)
    assert d["variance"][1] == {"group": "Residual", "var1": None, "var2": None,
                                "vcov": pytest.approx(10.7995, rel=1e-4), "sdcor": pytest.approx(3.2863, rel=1e-4)}
    s = m.summary()
    for piece in ("REML criterion", "Satterthwaite", "time:armB", "Residual", "Number of obs: 208"):
        assert piece in s


def test_singular_fit_is_explained():
    m = fit_lmm(read("singular"), y="y", subject="subject", time="time")
    assert m.singular and m.icc == 0.0
    assert any("Singular fit" in w and "variance between subjects is estimated as 0" in w for w in m.warnings)
    assert "boundary (singular) fit" in m.summary()
    assert m.to_dict()["variance"][0]["vcov"] == 0.0
    # the random-slope model on the same data is singular too
    rs = fit_lmm(read("singular"), y="y", subject="subject", time="time", random_slope=True)
    assert rs.singular and any("Singular fit" in w for w in rs.warnings)


def test_missing_outcomes_are_dropped_and_reported():
    data = read("ri_balanced")
    holes = data.copy()
    holes.loc[[3, 10, 11], "y"] = np.nan
    m = fit_lmm(holes, y="y", subject="subject", time="time")
    assert m.n_obs == len(data) - 3
    assert any(w.startswith("3 rows with a missing outcome ('y') were left out") for w in m.warnings)
    assert list(m.fitted.index) == [i for i in data.index if i not in (3, 10, 11)]
    ref = fit_lmm(data.drop(index=[3, 10, 11]), y="y", subject="subject", time="time")
    assert_same_fit(m, ref)


def test_cluster_boundary_and_few_clusters_are_warned():
    data = simulate(30, 4, seed=4, sd1=0.0, corr=0.0)
    data["clinic"] = data["subject"].map(lambda s: f"c{int(s[1:]) % 3}")
    # give the three clinics the same mean: their variance must be estimated as 0
    data["y"] -= data.groupby("clinic")["y"].transform("mean") - data["y"].mean()
    m = fit_lmm(data, y="y", subject="subject", time="time", cluster="clinic")
    assert any("Only 3 clinics" in w for w in m.warnings)
    assert set(m.ranef) == {"subject", "clinic"} and list(m.ranef["clinic"].index) == ["c0", "c1", "c2"]
    assert m.variance.loc[1, "vcov"] == 0.0 and m.singular
    assert any("variance between clinics is estimated as 0" in w for w in m.warnings)
    np.testing.assert_allclose(m.ranef["clinic"]["(Intercept)"], 0.0)


def test_categorical_visit_labels_and_levels():
    data = read("seed_bp")
    m = fit_lmm(data, y="bp", subject="patient", time="time_num", visit="time", time_as="categorical")
    assert list(m.fixed.index) == ["(Intercept)", "timeweek2", "timeweek4"]
    assert m.formula == "bp ~ factor(time) + (1 | patient)"
    assert m.ranef["patient"].index.tolist() == list(range(1, 11))  # integer ids sorted as numbers
    # integer visit labels, and visit defaulting to the time column
    r = read("ri_balanced")
    a = fit_lmm(r, y="y", subject="subject", time="time", visit="visit", time_as="categorical")
    b = fit_lmm(r, y="y", subject="subject", time="time", time_as="categorical")
    assert list(a.fixed.index) == ["(Intercept)", "visit1", "visit2", "visit3"]
    assert list(b.fixed.index) == ["(Intercept)", "time1", "time2", "time3"]
    np.testing.assert_allclose(a.fixed["estimate"], b.fixed["estimate"])
    # an ordered categorical keeps its own level order (not alphabetical)
    cat = data.assign(time=pd.Categorical(data["time"], categories=["week4", "week2", "baseline"], ordered=True))
    c = fit_lmm(cat, y="bp", subject="patient", time="time_num", visit="time", time_as="categorical")
    assert list(c.fixed.index) == ["(Intercept)", "timeweek2", "timebaseline"]
    assert c.tests.loc[0, "F"] == pytest.approx(m.tests.loc[0, "F"], rel=1e-7)


# --------------------------------------------------------------------------- bad input
def test_the_input_frame_is_unchanged():
    data = read("trial_mar")
    data.loc[5, "y"] = np.nan
    before = data.copy(deep=True)
    fit_lmm(data, y="y", subject="subject", time="time", between="arm", random_slope=True)
    fit_lmm(data, y="y", subject="subject", time="time", visit="visit", between="arm", time_as="categorical")
    pd.testing.assert_frame_equal(data, before)


def test_bad_input_raises_data_error():
    data = read("trial_mar")
    with pytest.raises(DataError, match="'yy'"):
        fit_lmm(data, y="yy", subject="subject", time="time")
    with pytest.raises(DataError, match="outcome"):
        fit_lmm(data.assign(y="high"), y="y", subject="subject", time="time")
    with pytest.raises(DataError, match="single subject"):
        fit_lmm(data.assign(subject="s1"), y="y", subject="subject", time="time")
    with pytest.raises(DataError, match="constant"):
        fit_lmm(data.assign(time=1.0), y="y", subject="subject", time="time")


def test_rank_deficient_designs_name_the_term():
    data = read("trial_mar")
    # nobody in arm B came to visit 4: visit4:armB cannot be estimated
    gap = data[~((data["arm"] == "B") & (data["visit"] == 4))]
    with pytest.raises(DataError, match=r"visit = 4 in arm = 'B'.*'visit4:armB'"):
        fit_lmm(gap, y="y", subject="subject", time="time", visit="visit", between="arm", time_as="categorical")
    # the numeric model is fine with that gap
    fit_lmm(gap, y="y", subject="subject", time="time", between="arm")
    # a between factor that is a copy of... the time itself cannot happen (it varies within subject),
    # but a time that is constant within each arm's subjects and collinear with arm can
    clash = data.assign(time=(data["arm"] == "B").astype(float) * 3.0)
    with pytest.raises(DataError, match="cannot be estimated"):
        fit_lmm(clash, y="y", subject="subject", time="time", between="arm")


def test_too_few_observations_raise():
    tiny = pd.DataFrame({"s": ["a", "a", "b"], "t": [0.0, 1.0, 0.0], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="too few"):
        fit_lmm(tiny, y="y", subject="s", time="t")
    once = pd.DataFrame({"s": list("abcdefgh"), "t": np.arange(8.0), "y": np.arange(8.0) ** 1.5})
    with pytest.raises(DataError, match="every s has a single measurement"):
        fit_lmm(once, y="y", subject="s", time="t")
    two = pd.DataFrame({"s": np.repeat(list("abcdef"), 2), "t": np.tile([0.0, 1.0], 6),
                        "y": np.arange(12.0) ** 1.5})
    with pytest.raises(DataError, match="random slope needs more measurements"):
        fit_lmm(two, y="y", subject="s", time="t", random_slope=True)


def test_bad_options_raise_value_error():
    data = read("ri_balanced")
    with pytest.raises(ValueError, match="method"):
        fit_lmm(data, y="y", subject="subject", time="time", method="reml2")
    with pytest.raises(ValueError, match="time_as"):
        fit_lmm(data, y="y", subject="subject", time="time", time_as="ordinal")
