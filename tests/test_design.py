"""Design: defaults, validation, FIELDS, presets, from_icc, describe."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pytest

from lmm_teach.design import FIELDS, PRESETS, Design, FieldInfo, equal_times
from lmm_teach.simulate import simulate

# The table of docs/api.md, field by field.
API_DEFAULTS = {
    "n_subjects": 40, "visit_times": (0.0, 1.0, 2.0, 3.0, 4.0, 5.0), "time_jitter": 0.0,
    "random_visits": False, "intercept": 100.0, "slope": -1.0, "arms": False, "arm_effect": 0.0,
    "arm_slope_effect": 0.0, "allocation": 0.5, "sd_intercept": 5.0, "sd_slope": 0.0,
    "corr_intercept_slope": 0.0, "sd_residual": 3.0, "n_clinics": 0, "sd_clinic": 0.0, "mcar": 0.0,
    "mar_dropout": 0.1, "mnar_dropout": 0.0, "mnar_driver": "value", "dropout_strength": 1.0,
}


def test_defaults_follow_the_api_table():
    d = Design()
    assert [f.name for f in dataclasses.fields(Design)] == list(API_DEFAULTS)
    assert d.to_dict() | {"visit_times": tuple(d.visit_times)} == API_DEFAULTS


def test_fields_describe_every_design_field_in_order():
    assert list(FIELDS) == [f.name for f in dataclasses.fields(Design)]
    for name, info in FIELDS.items():
        assert isinstance(info, FieldInfo) and info.name == name
        assert info.label and info.description and info.group
        assert info.kind in {"int", "float", "bool", "choice", "times"}
        assert info.default == getattr(Design(), name)
        assert info.cli_option == "--" + name.replace("_", "-")
        if info.kind in ("int", "float"):
            assert info.min < info.max and info.step > 0, name
            assert info.min <= info.default <= info.max, name
            # every value a control offers is a valid design (alone)
            for value in (info.min, info.max):
                extra = {"sd_slope": 1.0} if name == "mnar_dropout" else {}
                Design(**{name: value}, **extra)
    assert FIELDS["mnar_driver"].choices == ("value", "slope")


def test_visit_times_are_stored_as_a_tuple_of_floats_and_the_design_is_hashable():
    times = [0, 1, 2, 4]
    d = Design(visit_times=times)
    assert d.visit_times == (0.0, 1.0, 2.0, 4.0) and all(type(t) is float for t in d.visit_times)
    assert times == [0, 1, 2, 4]  # the caller's list is untouched
    assert hash(d) == hash(Design(visit_times=(0.0, 1.0, 2.0, 4.0)))
    assert d.n_visits == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.n_subjects = 3


def test_types_are_normalised():
    import numpy as np

    d = Design(n_subjects=np.int64(12), n_clinics=3.0, intercept=np.float32(1.5), arms=1)
    assert type(d.n_subjects) is int and d.n_subjects == 12
    assert type(d.n_clinics) is int and type(d.intercept) is float and d.arms is True


@pytest.mark.parametrize("changes, match", [
    ({"n_subjects": 1}, r"n_subjects \(number of patients\) must be at least 2"),
    ({"n_subjects": 10.5}, r"n_subjects .* must be a whole number"),
    ({"n_subjects": True}, r"n_subjects .* must be a whole number"),
    ({"visit_times": (0,)}, r"visit_times .* at least two times"),
    ({"visit_times": (0, 2, 1)}, r"visit_times .* strictly increasing \(1 follows 2\)"),
    ({"visit_times": (0, 1, 1)}, r"visit_times .* strictly increasing"),
    ({"visit_times": "0,1,2"}, r"visit_times .* a sequence of numbers"),
    ({"visit_times": (0, float("nan"))}, r"visit_times .* a finite number"),
    ({"time_jitter": -0.1}, r"time_jitter .* 0 or more \(it is a standard deviation\)"),
    ({"sd_intercept": -1}, r"sd_intercept .* 0 or more"),
    ({"sd_slope": -1}, r"sd_slope .* 0 or more"),
    ({"sd_clinic": -1}, r"sd_clinic .* 0 or more"),
    ({"sd_residual": 0}, r"sd_residual .* positive"),
    ({"corr_intercept_slope": 1.5}, r"corr_intercept_slope .* between -1 and 1"),
    ({"allocation": 1.0}, r"allocation .* strictly between 0 and 1"),
    ({"allocation": 0}, r"allocation .* strictly between 0 and 1"),
    ({"arms": True, "n_subjects": 4, "allocation": 0.1}, r"allocation .* both arms .* puts 0 in arm B"),
    ({"arms": True, "n_subjects": 4, "allocation": 0.9}, r"allocation .* puts 4 in arm B"),
    ({"mcar": 1.0}, r"mcar .* a probability in \[0, 1\)"),
    ({"mar_dropout": -0.1}, r"mar_dropout .* a probability in \[0, 1\)"),
    ({"mnar_dropout": 1.2}, r"mnar_dropout .* a probability"),
    ({"n_clinics": 1}, r"n_clinics .* 0 \(no clinic level\) or between 2 and n_subjects = 40"),
    ({"n_clinics": 41}, r"n_clinics .* between 2 and n_subjects = 40"),
    ({"n_clinics": -2}, r"n_clinics"),
    ({"mnar_driver": "age"}, r"mnar_driver .* 'value' or 'slope'"),
    ({"mnar_driver": "slope", "mnar_dropout": 0.1}, r"sd_slope is 0 so all slopes are equal: set sd_slope > 0"),
    ({"dropout_strength": float("inf")}, r"dropout_strength .* finite"),
    ({"dropout_strength": 50}, r"dropout_strength .* between -10 and 10"),
    ({"intercept": "high"}, r"intercept .* a number"),
    ({"random_visits": "yes"}, r"random_visits .* True or False"),
])
def test_impossible_values_are_explained(changes, match):
    with pytest.raises(ValueError, match=match):
        Design(**changes)


def test_replace_validates_again_and_leaves_the_original():
    d = Design()
    e = d.replace(n_subjects=10, mcar=0.2)
    assert (e.n_subjects, e.mcar, d.n_subjects, d.mcar) == (10, 0.2, 40, 0.0)
    with pytest.raises(ValueError, match="n_clinics"):
        d.replace(n_clinics=1)


def test_to_dict_is_json_ready_and_rebuilds_the_design():
    for d in PRESETS.values():
        back = Design(**json.loads(json.dumps(d.to_dict())))
        assert back == d


def test_ignored_fields_are_harmless_and_a_slope_driver_is_fine_when_unused():
    # a panel may keep the arm effect while the arms box is unticked
    d = Design(arm_effect=5.0, sd_clinic=2.0, mnar_driver="slope")
    assert d.true_effects() == {"time": -1.0} and d.n_arm_b == 0


def test_arm_b_size_rounds_halves_up():
    assert Design(arms=True, n_subjects=41).n_arm_b == 21
    assert Design(arms=True, n_subjects=40, allocation=2 / 3).n_arm_b == 27
    assert Design(arms=True, n_subjects=10, allocation=0.25).n_arm_b == 3  # 2.5 -> 3


def test_from_icc_sets_the_two_sds():
    d = Design.from_icc(0.6, total_variance=50, n_subjects=20)
    assert d.sd_intercept == pytest.approx(math.sqrt(30)) and d.sd_residual == pytest.approx(math.sqrt(20))
    assert d.icc == pytest.approx(0.6) and d.n_subjects == 20
    default = Design.from_icc(Design().icc)  # total variance of Design(): 25 + 9
    assert default.sd_intercept == pytest.approx(5) and default.sd_residual == pytest.approx(3)
    assert Design.from_icc(0.0).sd_intercept == 0.0
    with pytest.raises(ValueError, match=r"icc must be in \[0, 1\)"):
        Design.from_icc(1.0)
    with pytest.raises(ValueError, match="total_variance must be positive"):
        Design.from_icc(0.5, total_variance=0)
    with pytest.raises(TypeError, match="sets sd_intercept itself"):
        Design.from_icc(0.5, sd_intercept=2)


def test_icc_counts_the_clinic_variance():
    assert Design(n_clinics=4, sd_clinic=3.0, sd_intercept=4.0, sd_residual=3.0).icc == pytest.approx(25 / 34)


def test_true_effects_names_the_fitted_terms():
    assert Design().true_effects() == {"time": -1.0}
    d = Design(arms=True, arm_effect=2.0, arm_slope_effect=-0.5)
    assert d.true_effects() == {"time": -1.0, "arm": 2.0, "time:arm": -0.5}


def test_describe_speaks_of_what_the_design_has():
    text = Design().describe()
    assert text.startswith("40 patients are each measured at 6 visits (times 0, 1, 2, 3, 4, 5).")
    assert "starts at 100" in text and "SD 5" in text and "SD 3" in text and "MAR" in text
    assert "arm" not in text and "clinic" not in text
    trial = Design(arms=True, arm_effect=2, n_clinics=4, sd_clinic=1, mcar=0.2, mnar_dropout=0.1,
                   mnar_driver="slope", sd_slope=0.5, time_jitter=0.2, random_visits=True).describe()
    for word in ("arm B", "20 of 40", "4 clinics", "MCAR", "MNAR", "rate of change", "early or late",
                 "random number of the visits"):
        assert word in trial, word
    assert "No measurement is missing" in PRESETS["balanced and complete"].describe()
    assert "All patients are alike" in PRESETS["no between-subject variance"].describe()


def test_equal_times():
    assert equal_times(3) == (0.0, 1.0, 2.0)
    assert equal_times(3, spacing=0.5, start=1) == (1.0, 1.5, 2.0)
    with pytest.raises(ValueError, match="at least 2"):
        equal_times(1)
    with pytest.raises(ValueError, match="spacing must be a positive"):
        equal_times(3, spacing=0)


def test_presets_are_the_six_lessons():
    assert list(PRESETS) == ["balanced and complete", "30 % MCAR", "MAR dropout", "unequal spacing",
                             "clinics", "no between-subject variance"]
    p = PRESETS
    missing = ("mcar", "mar_dropout", "mnar_dropout")
    assert all(getattr(p["balanced and complete"], m) == 0 for m in missing)
    assert p["30 % MCAR"].mcar == 0.3 and p["30 % MCAR"].mar_dropout == 0
    mar = p["MAR dropout"]
    assert mar.arms and mar.mar_dropout > 0 and mar.dropout_strength >= 1 and mar.sd_slope > 0
    assert p["unequal spacing"].visit_times == (0, 1, 2, 4, 8, 12) and p["unequal spacing"].time_jitter > 0
    assert p["clinics"].n_clinics == 8 and p["clinics"].sd_clinic > 0
    assert p["no between-subject variance"].sd_intercept == 0 == p["no between-subject variance"].sd_slope


def test_preset_values_lie_in_the_ranges_the_controls_offer():
    for name, d in PRESETS.items():
        for field, info in FIELDS.items():
            if info.kind in ("int", "float"):
                assert info.min <= getattr(d, field) <= info.max, (name, field)


def test_designs_pickle_for_worker_processes():
    import pickle

    for d in PRESETS.values():
        assert pickle.loads(pickle.dumps(d)) == d


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_simulates(name):
    d = PRESETS[name]
    data = simulate(d, seed=1)
    assert data["subject"].nunique() == d.n_subjects
    assert ("arm" in data) == d.arms and ("clinic" in data) == (d.n_clinics > 0)
    complete = (data.groupby("subject").size() == d.n_visits).sum()
    if d.mcar == d.mar_dropout == d.mnar_dropout == 0:
        assert complete == d.n_subjects
    else:
        assert complete < d.n_subjects


def test_the_core_loads_no_widget_or_plot_library():
    code = ("import sys, lmm_teach; "
            "lmm_teach.simulate(lmm_teach.Design(), seed=1); "
            "print(sorted(m for m in ('bokeh', 'ipywidgets', 'jupyter_bokeh') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
