"""simulate: reproducibility, the shape of the table, and large samples recovering the design."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from lmm_teach.design import Design
from lmm_teach.simulate import Simulation, as_generator, simulate, simulate_arrays, subject_labels

# A small design that switches on every random part: arms, clinics, jitter,
# random slopes, MCAR and MAR dropout.
SMALL = Design(n_subjects=4, visit_times=(0, 1, 2, 4), time_jitter=0.2, arms=True, arm_effect=2.0,
               arm_slope_effect=-0.5, sd_slope=0.5, corr_intercept_slope=-0.3, n_clinics=2, sd_clinic=1.0,
               mcar=0.2, mar_dropout=0.2)

# simulate(SMALL, seed=20240601), generated once with numpy 2.4.6 and stored, so that a
# change of the random stream (numpy, platform, or our order of draws) is detected.
SMALL_ROWS = [
    ("s01", 0, 0.0, 107.778090286, "A", "c1"),
    ("s01", 1, 1.0971461576, 99.0453973926, "A", "c1"),
    ("s01", 3, 3.9304156463, 99.079075465, "A", "c1"),
    ("s02", 0, 0.0, 92.7200489694, "A", "c2"),
    ("s02", 1, 1.306993554, 94.6692213084, "A", "c2"),
    ("s02", 2, 1.9558513724, 94.0601742129, "A", "c2"),
    ("s02", 3, 4.115293031, 90.9284182171, "A", "c2"),
    ("s03", 0, 0.0, 97.8358991256, "B", "c1"),
    ("s03", 1, 0.9604371986, 98.8354422218, "B", "c1"),
    ("s04", 0, 0.0, 110.4981267902, "B", "c2"),
]
# subject: (random intercept, random slope, clinic effect), same call with with_truth=True
SMALL_TRUTH = {
    "s01": (3.2395310209, 0.1266658213, -0.4751071223),
    "s02": (-3.2151030537, -0.4655404655, 0.188615284),
    "s03": (-0.7234520345, 0.5957166317, -0.4751071223),
    "s04": (6.6679190645, 0.2331945857, 0.188615284),
}

# The core never calls warnings.warn (nor lets numpy warn): any warning fails a test here.
pytestmark = pytest.mark.filterwarnings("error")


def test_the_stored_numbers_come_back():
    sim = simulate(SMALL, seed=20240601, with_truth=True)
    expected = pd.DataFrame(SMALL_ROWS, columns=["subject", "visit", "time", "y", "arm", "clinic"])
    data = sim.data
    assert list(data.columns) == list(expected.columns)
    for col in ("subject", "arm", "clinic"):
        assert data[col].tolist() == expected[col].tolist()
    assert data["visit"].tolist() == expected["visit"].tolist()
    assert_allclose(data["time"], expected["time"], rtol=0, atol=1e-9)
    assert_allclose(data["y"], expected["y"], rtol=0, atol=1e-8)
    truth = np.array(list(SMALL_TRUTH.values()))
    assert sim.subjects.index.tolist() == list(SMALL_TRUTH)
    assert_allclose(sim.subjects[["intercept", "slope", "clinic_effect"]].to_numpy(), truth, atol=1e-9)
    assert sim.subjects["dropout_visit"].tolist()[2:] == [2.0, 1.0]
    assert sim.subjects["arm"].tolist() == ["A", "A", "B", "B"]


def test_same_seed_same_data_different_seed_different_data():
    d = Design(arms=True, sd_slope=1.0, time_jitter=0.2, mcar=0.1)
    a, b = simulate(d, seed=7), simulate(d, seed=7)
    pd.testing.assert_frame_equal(a, b)
    c = simulate(d, seed=8)
    assert len(a) != len(c) or not np.allclose(a["y"], c["y"])
    # an int and the SeedSequence or Generator built from it are the same seed
    pd.testing.assert_frame_equal(a, simulate(d, seed=np.random.SeedSequence(7)))
    pd.testing.assert_frame_equal(a, simulate(d, seed=np.random.default_rng(7)))


def test_a_generator_is_advanced_so_successive_studies_differ():
    g = np.random.default_rng(3)
    first, second = simulate(Design(), seed=g), simulate(Design(), seed=g)
    assert not np.allclose(first["y"].to_numpy()[:6], second["y"].to_numpy()[:6])
    g2 = np.random.default_rng(3)
    simulate_arrays(Design(), g2)
    pd.testing.assert_frame_equal(second, simulate(Design(), seed=g2))


def test_seed_none_gives_fresh_data():
    a, b = simulate(Design(), seed=None), simulate(Design())
    assert not np.allclose(a["y"].to_numpy()[:6], b["y"].to_numpy()[:6])


def test_the_callers_objects_are_unchanged():
    seq = np.random.SeedSequence(11)
    state = (seq.entropy, seq.spawn_key, seq.n_children_spawned)
    times = [0, 1, 3]
    d = Design(visit_times=times)
    frozen = d.to_dict()
    a = simulate(d, seed=seq)
    assert (seq.entropy, seq.spawn_key, seq.n_children_spawned) == state
    pd.testing.assert_frame_equal(a, simulate(d, seed=seq))
    assert times == [0, 1, 3] and d.to_dict() == frozen


@pytest.mark.parametrize("seed, error, match", [
    (1.5, TypeError, "seed must be a whole number"),
    (True, TypeError, "seed must be a whole number"),
    ("42", TypeError, "seed must be a whole number"),
    (-1, ValueError, "seed must be 0 or more"),
])
def test_bad_seeds_are_explained(seed, error, match):
    with pytest.raises(error, match=match):
        simulate(Design(), seed=seed)


def test_design_must_be_a_design():
    with pytest.raises(TypeError, match="design must be a lmm_teach Design"):
        simulate({"n_subjects": 5}, seed=1)
    assert simulate(seed=1)["subject"].nunique() == 40  # None: the default design


def test_changing_other_knobs_keeps_the_same_patients():
    base = simulate(Design(sd_slope=1.0, mar_dropout=0.0), seed=5, with_truth=True)
    for changes in ({"mar_dropout": 0.3, "mcar": 0.2}, {"arms": True, "arm_effect": 3.0},
                    {"time_jitter": 0.5, "random_visits": True}, {"n_clinics": 5, "sd_clinic": 2.0},
                    {"visit_times": (0, 2, 4)}, {"mnar_dropout": 0.2, "mnar_driver": "slope"}):
        other = simulate(base.design.replace(**changes), seed=5, with_truth=True)
        assert_allclose(other.subjects["intercept"], base.subjects["intercept"], err_msg=str(changes))
        assert_allclose(other.subjects["slope"], base.subjects["slope"], err_msg=str(changes))
    # missingness only removes rows: the rows that remain are the same numbers
    gappy = simulate(base.design.replace(mar_dropout=0.3, mcar=0.2), seed=5)
    both = gappy.merge(base.data, on=["subject", "visit"], suffixes=("", "_full"), validate="1:1")
    assert len(both) == len(gappy) < len(base.data)
    assert_array_equal(both["y"], both["y_full"])


def test_columns_dtypes_order_and_labels():
    d = Design(n_subjects=120, arms=True, n_clinics=12, sd_clinic=1.0, mcar=0.2)
    data = simulate(d, seed=2)
    assert list(data.columns) == ["subject", "visit", "time", "y", "arm", "clinic"]
    for col in ("subject", "arm", "clinic"):
        assert pd.api.types.is_string_dtype(data[col]), col
    assert data["visit"].dtype == np.int64 and data["time"].dtype == data["y"].dtype == np.float64
    assert data.index.equals(pd.RangeIndex(len(data)))
    assert data["subject"].iloc[0] == "s001" and data["subject"].iloc[-1] == "s120"
    assert sorted(data["clinic"].unique()) == [f"c{i:02d}" for i in range(1, 13)]
    assert set(data["arm"]) == {"A", "B"}
    keys = list(zip(data["subject"], data["visit"], strict=True))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    plain = simulate(Design(), seed=2)
    assert list(plain.columns) == ["subject", "visit", "time", "y"]
    assert plain["subject"].iloc[0] == "s01"
    assert subject_labels(9).tolist()[-1] == "s09" and subject_labels(1000)[0] == "s0001"


def test_simulate_arrays_is_the_same_draw():
    d = Design(arms=True, n_clinics=3, sd_clinic=1.0, mcar=0.1)
    a = simulate_arrays(d, 4)
    data = simulate(d, seed=4)
    assert_array_equal(subject_labels(d.n_subjects)[a.subject], data["subject"])
    assert_array_equal(a.visit, data["visit"])
    assert_array_equal(a.y, data["y"])
    assert_array_equal(np.array(["A", "B"])[a.arm], data["arm"])
    assert a.clinic.max() == 2
    none = simulate_arrays(Design(), 4)
    assert none.arm is None and none.clinic is None and none.subject_arm is None
    assert none.clinic_effect.shape == (0,)


def test_arms_get_exactly_the_allocated_number_and_raising_it_adds_subjects():
    for n, allocation, n_b in [(40, 0.5, 20), (41, 0.5, 21), (30, 1 / 3, 10), (10, 0.25, 3)]:
        s = simulate(Design(n_subjects=n, arms=True, allocation=allocation), seed=n, with_truth=True).subjects
        assert (s["arm"] == "B").sum() == n_b
    small = simulate(Design(arms=True, allocation=0.3), seed=1, with_truth=True).subjects
    large = simulate(Design(arms=True, allocation=0.6), seed=1, with_truth=True).subjects
    assert set(small.index[small["arm"] == "B"]) < set(large.index[large["arm"] == "B"])


def test_clinics_nest_subjects_in_nearly_equal_sizes():
    sim = simulate(Design(n_subjects=4000, n_clinics=400, sd_clinic=3.0, mar_dropout=0), seed=3, with_truth=True)
    s = sim.subjects
    sizes = s["clinic"].value_counts()
    assert len(sizes) == 400 and sizes.min() == sizes.max() == 10
    assert (sim.data.groupby("subject")["clinic"].nunique() == 1).all()
    effect = s.groupby("clinic")["clinic_effect"]
    assert (effect.nunique() == 1).all()
    # 400 clinic effects ~ N(0, 3^2): SD within 4 standard errors (3 / sqrt(800) each)
    assert abs(effect.first().std() - 3.0) < 4 * 3.0 / np.sqrt(800)


def test_the_truth_rebuilds_every_value():
    d = Design(n_subjects=30, visit_times=(0, 1, 3, 6), time_jitter=0.4, arms=True, arm_effect=2.5,
               arm_slope_effect=-0.7, sd_slope=0.8, corr_intercept_slope=0.5, n_clinics=3, sd_clinic=2.0,
               sd_residual=1e-9, mcar=0.1, mar_dropout=0.1)
    sim = simulate(d, seed=9, with_truth=True)
    assert isinstance(sim, Simulation) and sim.fixed == d.true_effects() and sim.design is d
    assert sim == sim and sim != simulate(d, seed=9, with_truth=True)  # identity: frames are not compared
    row = sim.subjects.loc[sim.data["subject"]].reset_index(drop=True)
    b = (sim.data["arm"] == "B").to_numpy()
    assert_array_equal(row["arm"], sim.data["arm"])
    assert_array_equal(row["clinic"], sim.data["clinic"])
    fitted = (d.intercept + d.arm_effect * b + row["intercept"] + row["clinic_effect"]
              + (d.slope + d.arm_slope_effect * b + row["slope"]) * sim.data["time"])
    assert_allclose(sim.data["y"], fitted, atol=1e-6)
    assert_array_equal(sim.subjects["n_observed"], sim.data.groupby("subject").size())


def test_summary_and_to_dict():
    sim = simulate(Design(arms=True, mar_dropout=0.2), seed=1, with_truth=True)
    text = sim.summary()
    assert "40 subjects" in text and "Dropped out" in text and "arm B" in text and "time = -1" in text
    out = json.loads(json.dumps(sim.to_dict()))
    assert out["design"]["arms"] is True and len(out["data"]) == len(sim.data)
    assert out["subjects"][0]["subject"] == "s01"
    assert {r["dropout_visit"] for r in out["subjects"]} - {None} <= {1, 2, 3, 4, 5}


# ----------------------------------------------------------------- large samples recover the design
def _wide(data: pd.DataFrame, n: int, n_visits: int) -> np.ndarray:
    y = np.full((n, n_visits), np.nan)
    y[data["subject"].str[1:].astype(int).to_numpy() - 1, data["visit"].to_numpy()] = data["y"].to_numpy()
    return y


def test_variance_decomposition_and_fixed_effects_are_recovered():
    d = Design(n_subjects=4000, visit_times=(0, 1, 2, 3), intercept=50.0, slope=2.0, sd_intercept=5.0,
               sd_slope=1.0, corr_intercept_slope=0.3, sd_residual=2.0, mar_dropout=0.0)
    y = _wide(simulate(d, seed=21), d.n_subjects, d.n_visits)
    t = np.array(d.visit_times)
    z = np.column_stack([np.ones_like(t), t])
    cov_u = 0.3 * 5.0 * 1.0
    g = np.array([[25.0, cov_u], [cov_u, 1.0]])
    sigma = z @ g @ z.T + 4.0 * np.eye(4)       # the marginal covariance Z G Z' + s_e^2 I
    # SE of a sample covariance of normals: sqrt((S_jj S_kk + S_jk^2) / n)
    se = np.sqrt((np.outer(np.diag(sigma), np.diag(sigma)) + sigma**2) / d.n_subjects)
    assert np.all(np.abs(np.cov(y, rowvar=False) - sigma) < 4 * se)
    mean_se = np.sqrt(np.diag(sigma) / d.n_subjects)
    assert np.all(np.abs(y.mean(axis=0) - (50.0 + 2.0 * t)) < 4 * mean_se)
    slopes = np.polyfit(t, y.T, 1)[0]           # each subject's own OLS slope
    assert abs(slopes.mean() - 2.0) < 4 * slopes.std() / np.sqrt(d.n_subjects)


def test_mcar_proportion_within_binomial_error():
    d = Design(n_subjects=4000, mcar=0.3, mar_dropout=0.0)
    sim = simulate(d, seed=22, with_truth=True)
    post = d.n_subjects * (d.n_visits - 1)
    observed = len(sim.data) - d.n_subjects
    share = 1 - observed / post
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / post)
    assert sim.subjects["dropout_visit"].isna().all()
    assert (sim.data.groupby("subject")["visit"].min() == 0).all()


def test_dropout_without_strength_is_a_constant_hazard():
    # P(completing) = (1 - p)^(J - 1) when the driver has no effect
    d = Design(n_subjects=4000, mar_dropout=0.15, dropout_strength=0.0)
    s = simulate(d, seed=23, with_truth=True).subjects
    expected = 0.85**5
    assert abs(s["dropout_visit"].isna().mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / 4000)


def _expected_first_hazard(p: float, strength: float) -> float:
    # E[logistic(logit p + strength Z)], Z ~ N(0, 1), by Gauss-Hermite quadrature
    x, w = np.polynomial.hermite_e.hermegauss(60)
    return float(np.sum(w / np.sqrt(2 * np.pi) / (1 + np.exp(-(np.log(p / (1 - p)) + strength * x)))))


@pytest.mark.parametrize("changes", [
    {"mar_dropout": 0.2},
    {"mar_dropout": 0.0, "mnar_dropout": 0.2},
    {"mar_dropout": 0.0, "mnar_dropout": 0.2, "mnar_driver": "slope"},
])
def test_first_visit_dropout_rate_follows_the_standardised_driver(changes):
    # at visit 1 each driver is exactly N(0, 1) when standardised by the design's own
    # marginal mean and SD, so the dropout share is E[logistic(logit p + 2 Z)]
    d = Design(n_subjects=4000, sd_slope=0.8, corr_intercept_slope=0.4, dropout_strength=2.0, **changes)
    s = simulate(d, seed=24, with_truth=True).subjects
    expected = _expected_first_hazard(0.2, 2.0)
    assert expected > 0.25  # the strength matters: 0.2 without it
    share = (s["dropout_visit"] == 1).mean()
    assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / 4000)


def test_mar_dropout_is_a_logistic_model_of_the_last_observed_value():
    # Refit the mechanism from the data alone: for every visit j >= 1 at which a
    # subject is still in the study, dropout ~ logistic(a + b z), z the last value
    # observed before j (MCAR gaps skipped) standardised by the design's marginal.
    import statsmodels.api as sm

    d = Design(n_subjects=3000, sd_slope=0.5, mcar=0.3, mar_dropout=0.15, dropout_strength=1.5)
    sim = simulate(d, seed=25, with_truth=True)
    y = _wide(sim.data, d.n_subjects, d.n_visits)
    t = np.array(d.visit_times)
    sd = np.sqrt(25 + 0.25 * t**2 + 9)
    mean = 100 - t
    drop = sim.subjects["dropout_visit"].fillna(d.n_visits).to_numpy()
    z, event = [], []
    for j in range(1, d.n_visits):
        prev = y[:, :j]
        last = np.where(~np.isnan(prev), np.arange(j), -1).max(axis=1)
        at_risk = drop >= j
        rows = np.flatnonzero(at_risk)
        z.append((prev[rows, last[rows]] - mean[last[rows]]) / sd[last[rows]])
        event.append(drop[rows] == j)
    fit = sm.Logit(np.concatenate(event).astype(float), sm.add_constant(np.concatenate(z))).fit(disp=0)
    (a, b), (se_a, se_b) = fit.params, fit.bse
    assert abs(a - np.log(0.15 / 0.85)) < 4 * se_a
    assert abs(b - 1.5) < 4 * se_b


def test_higher_values_drop_out_and_no_strength_means_no_selection():
    def baseline_gap(strength):
        d = Design(n_subjects=3000, mar_dropout=0.3, dropout_strength=strength)
        sim = simulate(d, seed=26, with_truth=True)
        base = sim.data[sim.data["visit"] == 0].set_index("subject")["y"]
        left = sim.subjects["dropout_visit"] == 1
        return base[left].mean() - base[~left].mean(), base.std() * np.sqrt(1 / left.sum() + 1 / (~left).sum())

    gap, se = baseline_gap(1.5)
    assert gap > 2.0 and gap > 10 * se  # those who left at visit 1 had a higher baseline
    gap0, se0 = baseline_gap(0.0)
    assert abs(gap0) < 4 * se0
    low, _ = baseline_gap(-1.5)
    assert low < -2.0  # a negative strength: low values leave


def test_the_mar_preset_biases_the_complete_cases():
    # The lesson of PRESETS["MAR dropout"]: patients worsening fastest leave, so the
    # completers' change from baseline to the last visit understates the truth.
    from lmm_teach.design import PRESETS

    d = PRESETS["MAR dropout"]
    g = np.random.default_rng(40)
    changes, completers = [], []
    for _ in range(200):
        a = simulate_arrays(d, g)
        y = np.full((d.n_subjects, d.n_visits), np.nan)
        y[a.subject, a.visit] = a.y
        done = ~np.isnan(y).any(axis=1) & (a.subject_arm == 0)
        changes.append(np.mean(y[done, -1] - y[done, 0]))
        completers.append(done.sum() / (a.subject_arm == 0).sum())
    truth = d.slope * (d.visit_times[-1] - d.visit_times[0])   # 5 in arm A
    assert np.mean(changes) < 0.8 * truth                         # about 0.6 x the truth
    assert 0.3 < np.mean(completers) < 0.7                        # about half complete


def test_mnar_slope_dropout_selects_steep_subjects():
    d = Design(n_subjects=3000, sd_slope=1.0, mar_dropout=0.0, mnar_dropout=0.15, mnar_driver="slope",
               dropout_strength=1.5)
    s = simulate(d, seed=27, with_truth=True).subjects
    left = s["dropout_visit"].notna()
    assert s.loc[left, "slope"].mean() - s.loc[~left, "slope"].mean() > 0.5


def test_dropout_is_monotone_and_baseline_always_observed():
    d = Design(n_subjects=500, mar_dropout=0.2, mnar_dropout=0.1, random_visits=True)
    sim = simulate(d, seed=28, with_truth=True)
    visits = sim.data.groupby("subject")["visit"]
    assert (visits.min() == 0).all()
    # without MCAR the observed visits of a subject are 0, 1, ..., k - 1
    assert (visits.max() + 1 == visits.size()).all()
    s = sim.subjects
    gone = s["dropout_visit"].notna()
    assert (s.loc[gone, "n_observed"] == s.loc[gone, "dropout_visit"]).all()
    assert (s.loc[~gone, "n_observed"] == s.loc[~gone, "planned_visits"]).all()
    assert (s.loc[gone, "dropout_visit"] < s.loc[gone, "planned_visits"]).all()


def test_random_number_of_visits_is_uniform_from_two_to_all():
    d = Design(n_subjects=4000, random_visits=True, mar_dropout=0.0)
    s = simulate(d, seed=29, with_truth=True).subjects
    counts = s["planned_visits"].value_counts().sort_index()
    assert counts.index.tolist() == [2, 3, 4, 5, 6]
    assert np.all(np.abs(counts / 4000 - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 4000))
    assert (s["n_observed"] == s["planned_visits"]).all()


def test_jittered_times_stay_in_order_and_baseline_on_schedule():
    planned = np.array([0.0, 1, 2, 4, 8, 12])
    for jitter in (0.3, 5.0, 100.0):
        d = Design(n_subjects=1000, visit_times=planned, time_jitter=jitter, mar_dropout=0.0)
        data = simulate(d, seed=30)
        t = _wide(data.rename(columns={"y": "tmp", "time": "y"}), 1000, 6)
        assert np.all(t[:, 0] == 0.0)
        assert np.all(np.diff(t, axis=1) > 0), jitter
        gaps = np.diff(planned)
        lo = planned[1:] - 0.45 * gaps
        hi = planned[1:] + 0.45 * np.append(gaps[1:], gaps[-1])
        assert np.all((t[:, 1:] >= lo) & (t[:, 1:] <= hi))  # reached only when tanh saturates
    # a small jitter is (nearly) N(0, jitter^2) around the planned time
    d = Design(n_subjects=4000, time_jitter=0.05, mar_dropout=0.0)
    data = simulate(d, seed=31)
    dev = (data["time"] - data["visit"].astype(float))[data["visit"] > 0]
    assert abs(dev.std() / 0.05 - 1) < 0.03 and abs(dev.mean()) < 4 * 0.05 / np.sqrt(len(dev))
    assert (simulate(Design(), seed=1)["time"] == simulate(Design(), seed=1)["visit"]).all()


def test_as_generator_returns_a_given_generator_itself():
    g = np.random.default_rng(0)
    assert as_generator(g) is g


# ----------------------------------------------------------------- random valid designs
@st.composite
def designs(draw):
    n = draw(st.integers(2, 60))
    gaps = draw(st.lists(st.floats(0.01, 10), min_size=1, max_size=6))
    start = draw(st.floats(-5, 5))
    times = tuple(start + np.cumsum([0.0, *gaps]))
    arms = draw(st.booleans())
    n_clinics = draw(st.sampled_from([0, 2, n]) | st.integers(2, n))
    sd_slope = draw(st.sampled_from([0.0, 0.5]) | st.floats(0, 5))
    driver = draw(st.sampled_from(["value", "slope"]))
    kw = dict(
        n_subjects=n, visit_times=times, time_jitter=draw(st.floats(0, 3)), random_visits=draw(st.booleans()),
        intercept=draw(st.floats(-1e3, 1e3)), slope=draw(st.floats(-10, 10)), arms=arms,
        arm_effect=draw(st.floats(-20, 20)), arm_slope_effect=draw(st.floats(-5, 5)),
        allocation=draw(st.floats(0.05, 0.95)), sd_intercept=draw(st.floats(0, 20)), sd_slope=sd_slope,
        corr_intercept_slope=draw(st.floats(-1, 1)), sd_residual=draw(st.floats(0.01, 20)),
        n_clinics=n_clinics, sd_clinic=draw(st.floats(0, 10)), mcar=draw(st.floats(0, 0.95)),
        mar_dropout=draw(st.floats(0, 0.95)), mnar_dropout=draw(st.floats(0, 0.95)), mnar_driver=driver,
        dropout_strength=draw(st.floats(-10, 10)),
    )
    try:
        return Design(**kw)
    except ValueError:
        assume(False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(design=designs(), seed=st.integers(0, 2**32))
def test_any_valid_design_simulates_a_tidy_table(design, seed):
    sim = simulate(design, seed=seed, with_truth=True)
    data = sim.data
    cols = ["subject", "visit", "time", "y"] + ["arm"] * design.arms + ["clinic"] * (design.n_clinics > 0)
    assert list(data.columns) == cols
    assert data["visit"].dtype == np.int64 and data["time"].dtype == np.float64
    assert np.isfinite(data["y"]).all() and np.isfinite(data["time"]).all()
    # every subject has its baseline, on schedule; visits in order, times strictly increasing
    assert data["subject"].nunique() == design.n_subjects
    first = data.groupby("subject").head(1)
    assert (first["visit"] == 0).all() and (first["time"] == design.visit_times[0]).all()
    same = data["subject"].to_numpy()[1:] == data["subject"].to_numpy()[:-1]
    assert np.all(np.diff(data["visit"].to_numpy())[same] > 0)
    assert np.all(np.diff(data["time"].to_numpy())[same] > 0)
    assert data["visit"].max() < design.n_visits
    assert len(sim.subjects) == design.n_subjects
