"""Tests of the repeated-measures ANOVA (lmm_teach.anova, lmm_teach.anova.algebra).

Reference numbers come from R (afex 1.2-1, car) through /work/shared/reference:
every case was fitted as

    # R: data_complete <- subset(data, subject %in% subjects_with_every_visit)
    # R: afex::aov_ez("subject", "y", data_complete, within = "visit", between = "arm")

(``between`` only for trial_mar; column names as in tests/data/cases.json).  The
cross-checks use pingouin (listwise deletion, GG epsilon as afex) and statsmodels
AnovaRM (balanced, complete data only).
"""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import lmm_teach.anova.algebra
import lmm_teach.anova.fit
from lmm_teach.anova import AnovaResult, rm_anova, rm_anova_arrays
from lmm_teach.validate import DataError

# pingouin 0.5 calls DataFrame.dropna(inplace=True), deprecated in pandas 3: not ours to fix.
PINGOUIN_NOISE = pytest.mark.filterwarnings("ignore:The inplace keyword")
# pingouin.mixed_anova gives afex's Greenhouse-Geisser epsilon from 0.7 on (0.6.1, the newest for
# Python 3.10, differs; lmm_teach agrees with afex): the mixed cross-checks assert 0.7's behaviour.
# R/afex (tests/data/*.expected.json) is the judge; pingouin is a second opinion.
PINGOUIN_MIXED = "0.7"

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "cases.json").read_text())

# The R call behind each case's "anova" block in tests/data/<case>.expected.json
# (after listwise deletion of the subjects lacking any visit).
R_CALLS = {
    "seed_bp": 'afex::aov_ez("patient", "bp", data_complete, within = "time")',
    "ri_balanced": 'afex::aov_ez("subject", "y", data_complete, within = "visit")',
    "ri_mcar_unequal": 'afex::aov_ez("subject", "y", data_complete, within = "visit")',
    "rs_corr": 'afex::aov_ez("subject", "y", data_complete, within = "visit")',
    "trial_mar": 'afex::aov_ez("subject", "y", data_complete, within = "visit", between = "arm")',
    "nested_clinics": 'afex::aov_ez("subject", "y", data_complete, within = "visit")',
    "singular": 'afex::aov_ez("subject", "y", data_complete, within = "visit")',
}


def load(case: str) -> tuple[pd.DataFrame, dict]:
    roles = CASES[case]
    return pd.read_csv(DATA / f"{case}.csv"), roles


def fit(case: str, data: pd.DataFrame | None = None, **kw) -> AnovaResult:
    frame, roles = load(case)
    return rm_anova(frame if data is None else data, y=roles["y"], subject=roles["subject"],
                    visit=roles["visit"], between=roles["between"], **kw)


def incomplete_ids(data: pd.DataFrame, roles: dict) -> set:
    """Subjects lacking a visit, computed independently of the module (pandas pivot)."""
    wide = data.pivot_table(index=roles["subject"], columns=roles["visit"], values=roles["y"], aggfunc="mean")
    return set(wide.index[wide.isna().any(axis=1)])


def balanced_mixed(seed: int, *, n_per_group: int = 10, k: int = 4, n_groups: int = 2) -> pd.DataFrame:
    """A balanced design (2 or 3 groups) with a visit effect and an interaction."""
    rng = np.random.default_rng(seed)
    rows = []
    for arm, shift in (("A", 0.0), ("B", 1.5), ("C", -1.0))[:n_groups]:
        for i in range(n_per_group):
            u = rng.normal(0, 2)
            for j in range(k):
                rows.append((f"{arm}{i:02d}", arm, j, 10 + u - 0.5 * j + shift * j / k + rng.normal(0, 1 + 0.3 * j)))
    return pd.DataFrame(rows, columns=["subject", "arm", "visit", "y"])


# --------------------------------------------------------------------------- R (afex)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_afex(case):
    """Every number of the afex reference, for each case (see R_CALLS for the call)."""
    expected = json.loads((DATA / f"{case}.expected.json").read_text())["anova"]
    data, roles = load(case)
    res = fit(case)
    assert res.n_subjects_used == expected["n_subjects_used"], R_CALLS[case]
    assert res.n_subjects_dropped == expected["n_subjects_dropped"]
    assert set(res.dropped_subjects) == incomplete_ids(data, roles)
    assert res.n_obs_used == res.n_subjects_used * len(res.visit_levels)
    table = res.table.set_index("effect")
    assert list(table.index) == [e["effect"] for e in expected["effects"]]
    for eff in expected["effects"]:
        row = table.loc[eff["effect"]]
        assert row["df_num"] == eff["df_num"] and row["df_den"] == eff["df_den"]
        assert_allclose(row["F"], eff["F"], rtol=1e-5)
        assert_allclose(row["p"], eff["p"], rtol=1e-4)
        if "eps_gg" not in eff:  # the between-subject effect: no sphericity
            assert row[["eps_gg", "p_gg", "eps_hf", "p_hf", "mauchly_w", "mauchly_p"]].isna().all()
            continue
        for key in ("eps_gg", "eps_hf", "mauchly_w"):  # eps_hf uncapped, as afex prints it
            assert_allclose(row[key], eff[key], rtol=1e-5, err_msg=f"{case} {key}")
        for key in ("p_gg", "p_hf", "mauchly_p"):
            assert_allclose(row[key], eff[key], rtol=1e-4, err_msg=f"{case} {key}")


def test_huynh_feldt_above_one_is_capped_for_p():
    # R: afex::aov_ez("subject", "y", ri_balanced, within = "visit")
    #    prints HF eps 1.064845 and p[HF] equal to the uncorrected p.
    row = fit("ri_balanced").table.iloc[0]
    assert row["eps_hf"] > 1
    assert row["p_hf"] == row["p"]


def test_to_dict_is_the_json_contract():
    res = fit("trial_mar")
    out = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    expected = json.loads((DATA / "trial_mar.expected.json").read_text())["anova"]
    assert {"n_subjects_used", "n_subjects_dropped", "dropped_subjects", "effects"} <= set(out)
    assert out["dropped_subjects"] == list(res.dropped_subjects)
    for got, want in zip(out["effects"], expected["effects"], strict=True):
        assert set(want) <= set(got)
        assert got["effect"] == want["effect"]
        assert_allclose(got["F"], want["F"], rtol=1e-5)
        assert type(got["df_num"]) is int and type(got["F"]) is float
    between = out["effects"][0]
    assert between["effect"] == "arm" and between["eps_gg"] is None and between["mauchly_p"] is None


# --------------------------------------------------------------------------- pingouin, statsmodels


@PINGOUIN_NOISE
@pytest.mark.parametrize("case", ["seed_bp", "ri_balanced", "rs_corr", "singular"])
def test_matches_pingouin_one_way(case):
    pg = pytest.importorskip("pingouin", minversion="0.6")  # the column names p_unc, p_GG_corr, W_spher, p_spher
    data, roles = load(case)
    res = fit(case).table.iloc[0]
    # pingouin removes incomplete subjects listwise too (rs_corr has 28 of them).
    ref = pg.rm_anova(data, dv=roles["y"], within=roles["visit"], subject=roles["subject"],
                      correction=True, detailed=True, effsize="ng2").iloc[0]
    assert_allclose(res["F"], ref["F"], rtol=1e-9)
    assert_allclose(res["p"], ref["p_unc"], rtol=1e-8)
    assert_allclose(res["ges"], ref["ng2"], rtol=1e-9)
    assert_allclose(res["eps_gg"], ref["eps"], rtol=1e-9)
    assert_allclose(res["p_gg"], ref["p_GG_corr"], rtol=1e-8)
    assert_allclose(res["mauchly_w"], ref["W_spher"], rtol=1e-8)
    assert_allclose(res["mauchly_p"], ref["p_spher"], rtol=1e-6)


@PINGOUIN_NOISE
@pytest.mark.parametrize("n_groups", [2, 3])
def test_matches_pingouin_mixed_balanced(n_groups):
    pg = pytest.importorskip("pingouin", minversion=PINGOUIN_MIXED)
    data = balanced_mixed(3, n_groups=n_groups, n_per_group=7)
    res = rm_anova(data, y="y", subject="subject", visit="visit", between="arm").table
    ref = pg.mixed_anova(data, dv="y", within="visit", subject="subject", between="arm",
                         correction=True, effsize="ng2")
    assert_allclose(res["F"], ref["F"], rtol=1e-9)
    assert_allclose(res["p"], ref["p_unc"], rtol=1e-8)
    assert_allclose(res["ges"], ref["ng2"], rtol=1e-9)
    assert_allclose(res["eps_gg"].iloc[1:], ref["eps"].iloc[1:], rtol=1e-9)
    assert_allclose(res["p_gg"].iloc[1:], ref["p_GG_corr"].iloc[1:], rtol=1e-8)
    assert_allclose(res["mauchly_w"].iloc[1:], ref["W_spher"].iloc[1:], rtol=1e-8)


@PINGOUIN_NOISE
def test_unbalanced_groups_use_type_iii_like_afex_not_pingouin():
    """trial_mar keeps 16 + 14 complete subjects.  afex (type III) tests visit on the
    unweighted mean profile of the arms; pingouin.mixed_anova weights the arms
    (F = 40.59 instead of R's 42.357).  The arm and interaction tests agree."""
    res = fit("trial_mar").table
    # R: afex::aov_ez(...)$anova_table["visit", "F"] = 42.357428916962 (on every Python)
    assert_allclose(res["F"].iloc[1], 42.357428916962, rtol=1e-9)
    pg = pytest.importorskip("pingouin", minversion=PINGOUIN_MIXED)
    data, _ = load("trial_mar")
    complete = data.groupby("subject").filter(lambda s: len(s) == 5)
    ref = pg.mixed_anova(complete, dv="y", within="visit", subject="subject", between="arm")
    assert_allclose(res["F"].iloc[[0, 2]], ref["F"].iloc[[0, 2]], rtol=1e-9)
    assert_allclose(res["eps_gg"].iloc[1], ref["eps"].iloc[1], rtol=1e-9)
    assert abs(res["F"].iloc[1] - ref["F"].iloc[1]) > 1  # 42.357 (afex) vs 40.59 (pingouin)


@pytest.mark.parametrize("case", ["ri_balanced", "nested_clinics", "seed_bp"])
def test_matches_statsmodels_anovarm(case):
    from statsmodels.stats.anova import AnovaRM

    data, roles = load(case)
    ref = AnovaRM(data, depvar=roles["y"], subject=roles["subject"], within=[roles["visit"]]).fit()
    ref = ref.anova_table.iloc[0]
    res = fit(case).table.iloc[0]
    assert_allclose(res["F"], ref["F Value"], rtol=1e-9)
    assert (res["df_num"], res["df_den"]) == (ref["Num DF"], ref["Den DF"])
    assert_allclose(res["p"], ref["Pr > F"], rtol=1e-8)


def test_two_visits_is_the_paired_t_test():
    data = balanced_mixed(5, k=2)
    res = rm_anova(data, y="y", subject="subject", visit="visit").table.iloc[0]
    wide = data.pivot(index="subject", columns="visit", values="y")
    t = stats.ttest_rel(wide[1], wide[0])
    assert_allclose(res["F"], t.statistic**2, rtol=1e-10)
    assert_allclose(res["p"], t.pvalue, rtol=1e-9)
    # One contrast: sphericity holds by definition.
    assert res["mauchly_w"] == 1 and res["eps_gg"] == 1 and res["eps_hf"] == 1
    assert res["p_gg"] == res["p"] == res["p_hf"]


# --------------------------------------------------------------------------- properties


def test_shuffling_rows_and_relabelling_subjects_change_nothing():
    data, roles = load("trial_mar")
    base = fit("trial_mar")
    rng = np.random.default_rng(11)
    ids = data["subject"].unique()
    new_ids = dict(zip(ids, [f"p{n}" for n in rng.permutation(len(ids))], strict=True))
    other = data.assign(subject=data["subject"].map(new_ids)).sample(frac=1, random_state=4)
    res = fit("trial_mar", other)
    pd.testing.assert_frame_equal(res.table, base.table, check_exact=False, rtol=1e-10)
    pd.testing.assert_frame_equal(res.cell_means, base.cell_means, check_exact=False, rtol=1e-10)
    assert set(res.dropped_subjects) == {new_ids[s] for s in base.dropped_subjects}


def test_duplicate_rows_are_averaged_with_a_warning():
    data, _ = load("ri_balanced")
    row = data[(data["subject"] == "s003") & (data["visit"] == 2)]
    doubled = pd.concat([data, row.assign(y=row["y"] + 2.0)], ignore_index=True)
    averaged = data.copy()
    averaged.loc[row.index, "y"] += 1.0
    res, ref = fit("ri_balanced", doubled), fit("ri_balanced", averaged)
    pd.testing.assert_frame_equal(res.table, ref.table, check_exact=False, rtol=1e-12)
    assert res.n_obs_used == ref.n_obs_used == 48
    (warning,) = [w for w in res.warnings if "averaged" in w]
    assert "1 subject/visit cell" in warning and "'s003'" in warning and "2 rows" in warning
    assert not ref.warnings


def test_incomplete_subjects_are_dropped_and_named():
    data, _ = load("ri_balanced")
    gone = data[~((data["subject"].isin(["s010", "s003"])) & (data["visit"] == 1))]
    res = fit("ri_balanced", gone)
    assert res.dropped_subjects == ("s003", "s010")  # natural order, original ids
    assert (res.n_subjects_used, res.n_subjects_dropped, res.n_obs_used) == (10, 2, 40)
    assert any("s003, s010" in w and "listwise" in w for w in res.warnings)
    assert "2 dropped" in res.summary() and "s003, s010" in res.summary()
    complete = fit("ri_balanced", data[~data["subject"].isin(["s003", "s010"])])
    pd.testing.assert_frame_equal(res.table, complete.table)


def test_missing_outcome_drops_the_subject_and_says_so():
    data, _ = load("ri_balanced")
    data.loc[(data["subject"] == "s005") & (data["visit"] == 2), "y"] = np.nan
    res = fit("ri_balanced", data)
    assert res.dropped_subjects == ("s005",)
    assert any("1 row with a missing 'y' was ignored" in w for w in res.warnings)


def test_callers_frame_is_not_modified():
    data, _ = load("trial_mar")
    data["arm"] = pd.Categorical(data["arm"], categories=["B", "A"])
    data.loc[3, "y"] = np.nan
    data = pd.concat([data, data.iloc[[0]]])  # a duplicate row and a repeated index label
    before = data.copy(deep=True)
    fit("trial_mar", data, time="time")
    pd.testing.assert_frame_equal(data, before)


def test_numeric_ids_are_kept_as_they_are():
    res = fit("seed_bp")
    data, _ = load("seed_bp")
    res = fit("seed_bp", data[~((data["patient"] == 7) & (data["time"] == "week2"))])
    assert res.dropped_subjects == (7,) and type(res.dropped_subjects[0]) is int
    assert res.to_dict()["dropped_subjects"] == [7]


# --------------------------------------------------------------------------- visit order


def test_string_visits_sort_naturally():
    res = fit("seed_bp")
    assert res.visit_levels == ("baseline", "week2", "week4")
    data = balanced_mixed(1, k=3)
    labels = data.assign(visit=data["visit"].map({0: "week1", 1: "week2", 2: "week10"}))
    res = rm_anova(labels, y="y", subject="subject", visit="visit")
    assert res.visit_levels == ("week1", "week2", "week10")
    assert list(res.cell_means["visit"]) == ["week1", "week2", "week10"]


def test_numeric_visits_sort_numerically_and_categories_keep_their_order():
    data = balanced_mixed(2, k=3)
    numeric = data.assign(visit=data["visit"].map({0: 10.0, 1: 2.0, 2: 1.0}))
    res = rm_anova(numeric, y="y", subject="subject", visit="visit")
    assert res.visit_levels == (1.0, 2.0, 10.0)
    cat = data.assign(visit=pd.Categorical(data["visit"].map({0: "c", 1: "b", 2: "a"}),
                                           categories=["z", "c", "b", "a"]))  # "z" never occurs
    res_cat = rm_anova(cat, y="y", subject="subject", visit="visit")
    assert res_cat.visit_levels == ("c", "b", "a")
    plain = rm_anova(data, y="y", subject="subject", visit="visit")
    assert_allclose(res_cat.cell_means["mean"], plain.cell_means["mean"], rtol=1e-12)
    # The tests do not depend on the order of the visits.
    for other in (res, res_cat):
        assert_allclose(other.table[["F", "eps_gg", "eps_hf", "mauchly_w"]].to_numpy(),
                        plain.table[["F", "eps_gg", "eps_hf", "mauchly_w"]].to_numpy(), rtol=1e-10)


def test_cell_means_of_complete_cases():
    data, _ = load("trial_mar")
    res = fit("trial_mar", time="time")
    complete = data.groupby("subject").filter(lambda s: len(s) == 5)
    want = complete.groupby(["arm", "visit"]).agg(mean_time=("time", "mean"), mean=("y", "mean"),
                                                 sd=("y", "std"), n=("y", "size")).reset_index()
    got = res.cell_means
    assert list(got.columns) == ["arm", "visit", "mean_time", "mean", "sd", "n"]
    assert list(got["n"]) == [16] * 5 + [14] * 5
    cols = ["mean_time", "mean", "sd"]
    assert_allclose(got[cols].to_numpy(), want[cols].to_numpy(), rtol=1e-12)


# --------------------------------------------------------------------------- errors


def test_too_few_complete_subjects():
    data, _ = load("ri_balanced")
    only_one = data[(data["subject"] == "s000") | (data["visit"] != 3)]
    with pytest.raises(DataError, match=r"only 1 of 12 subjects has all 4 visits.*at least 2.*LMM can still"):
        fit("ri_balanced", only_one)
    none = data[data["visit"] != 3]
    none = pd.concat([none, data[(data["subject"] == "s000") & (data["visit"] == 3)]])
    none = none[~((none["subject"] == "s000") & (none["visit"] == 0))]
    with pytest.raises(DataError, match=r"only 0 of 12 subjects have all 4 visits.*visit 3 is missing for 11"):
        fit("ri_balanced", none)


def test_a_group_with_one_complete_subject():
    data, _ = load("trial_mar")
    complete_b = data[data["arm"] == "B"].groupby("subject").filter(lambda s: len(s) == 5)["subject"].unique()
    cut = data[~(data["subject"].isin(complete_b[1:]) & (data["visit"] == 4))]
    with pytest.raises(DataError, match=r"'arm' group 'B' only 1 of 30 subjects has all 5 visits"):
        fit("trial_mar", cut)


def test_between_factor_varying_within_a_subject():
    data, _ = load("trial_mar")
    data.loc[(data["subject"] == "s000") & (data["visit"] == 2), "arm"] = "B"
    assert set(data.loc[data["subject"] == "s000", "arm"]) == {"A", "B"}
    with pytest.raises(DataError, match=r"changes within subject 's000'"):
        fit("trial_mar", data)


def test_missing_column():
    data, _ = load("ri_balanced")
    with pytest.raises(DataError, match=r"column 'visits' .* not in the data; did you mean 'visit'"):
        rm_anova(data, y="y", subject="subject", visit="visits")


def test_fewer_subjects_than_visits_skips_mauchly():
    from statsmodels.stats.anova import AnovaRM

    data, _ = load("ri_balanced")  # 4 visits: Mauchly needs at least 4 subjects
    small = data[data["subject"].isin(["s000", "s001", "s002"])]
    res = rm_anova(small, y="y", subject="subject", visit="visit")
    row = res.table.iloc[0]
    assert np.isnan(row["mauchly_w"]) and np.isnan(row["mauchly_p"]) and np.isfinite(row["eps_gg"])
    assert any("Mauchly's test needs more complete subjects" in w for w in res.warnings)
    ref = AnovaRM(small, depvar="y", subject="subject", within=["visit"]).fit().anova_table.iloc[0]
    assert_allclose(row["F"], ref["F Value"], rtol=1e-9)


# --------------------------------------------------------------------------- arrays, summary, imports


def test_arrays_function_matches_the_table():
    data, _ = load("trial_mar")
    wide = data.pivot(index="subject", columns="visit", values="y").dropna()
    arms = data.drop_duplicates("subject").set_index("subject").loc[wide.index, "arm"]
    out = rm_anova_arrays(wide.to_numpy(), (arms == "B").to_numpy().astype(int))
    assert out["terms"] == ("between", "within", "between:within")
    table = fit("trial_mar").table
    for key in ("F", "p", "ges", "eps_gg", "eps_hf", "mauchly_p", "ss_effect", "ss_error"):
        assert_allclose(out[key], table[key], rtol=1e-12, equal_nan=True)


def test_arrays_function_rejects_bad_input():
    Y = np.arange(12.0).reshape(4, 3)
    with pytest.raises(DataError, match="at least 2 subjects"):
        rm_anova_arrays(Y, [0, 0, 0, 1])
    for one_group in ([0, 0, 0, 0], [1, 1, 1, 1]):  # an empty arm must not vanish silently
        with pytest.raises(DataError, match="single group|at least 2 subjects"):
            rm_anova_arrays(Y, one_group)
    with pytest.raises(DataError, match="finite"):
        rm_anova_arrays(np.where(Y == 5, np.nan, Y))
    with pytest.raises(DataError, match="at least 2 visits"):
        rm_anova_arrays(Y[:, :1])


def test_summary_reads_like_afex():
    text = fit("trial_mar").summary()
    for piece in ("Response: y", "arm:visit", "Mauchly W", "eps GG", "eps HF", "30 dropped", "3.274", "42.357"):
        assert piece in text, piece


def test_docstring_examples_run():
    for module in (lmm_teach.anova.fit, lmm_teach.anova.algebra):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__


def test_core_does_not_load_the_widget_stack():
    code = ("import sys, lmm_teach.anova; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('bokeh', 'ipywidgets', 'jupyter_bokeh')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_two_complete_subjects_give_numbers_not_an_exception():
    # Two subjects: the error SSCP has rank 1, eps_gg = 1/d and the Huynh-Feldt
    # denominator is 0; afex would print a meaningless epsilon, we report NaN.
    from lmm_teach.anova import rm_anova_arrays

    Y = np.array([[10.0, 11.0, 13.0, 12.0], [9.0, 12.5, 12.0, 14.0]])
    out = rm_anova_arrays(Y)
    assert np.isfinite(out["F"][0]) and np.isfinite(out["p_gg"][0])
    assert out["eps_gg"][0] == pytest.approx(1 / 3)
    assert np.isnan(out["eps_hf"][0]) and np.isnan(out["p_hf"][0])


def test_visit_column_called_time_keeps_its_labels():
    # load_bp() names its visit labels "time" and its numeric time "time_num":
    # the mean time of each cell must not overwrite the labels.
    import lmm_teach

    res = rm_anova(lmm_teach.load_bp(), y="bp", subject="patient", visit="time", time="time_num")
    assert list(res.cell_means["time"]) == ["baseline", "week2", "week4"]
    assert list(res.cell_means["mean_time"]) == [0.0, 1.0, 2.0]
