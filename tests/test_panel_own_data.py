"""The "Your own data" panel driven from plain Python: a DataFrame or an uploaded CSV,
guessed column roles, Analyse alone and inside the Explorer, and every bad file or
bad column choice explained in the panel (never a traceback).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import io
import json
import warnings

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest
from widget_tree import css_classes as _classes
from widget_tree import walk as _walk

import lmm_teach
from lmm_teach.compare import analyze
from lmm_teach.design import PRESETS, Design
from lmm_teach.simulate import simulate
from lmm_teach.widgets.data_panel import OwnDataPanel, guess_roles
from lmm_teach.widgets.notebook import figures_in

# A learner's trial, as a spreadsheet would hold it: names of their own, visit labels
# beside the (jittered) weeks, text arms, numeric blood pressure.
_TRIAL_DESIGN = Design(n_subjects=16, visit_times=(0, 4, 8, 12), time_jitter=0.4, arms=True,
                       arm_slope_effect=-0.5, mar_dropout=0.1, intercept=150, slope=-0.3)
_VISITS = {0: "baseline", 1: "week 4", 2: "week 8", 3: "week 12"}



def _upload(raw: bytes, name: str) -> tuple:
    """What ipywidgets 8's FileUpload holds after the learner picks a file."""
    return ({"name": name, "type": "text/csv", "size": len(raw), "content": memoryview(raw),
             "last_modified": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)},)


@pytest.fixture(scope="module")
def trial() -> pd.DataFrame:
    sim = simulate(_TRIAL_DESIGN, 8)
    return pd.DataFrame({
        "patient_id": sim["subject"].str.replace("s", "P", regex=False),
        "arm": sim["arm"].map({"A": "control", "B": "treatment"}),
        "visit": sim["visit"].map(_VISITS),
        "weeks": sim["time"].round(1),
        "sbp": sim["y"].round(0),
    })


@pytest.fixture(scope="module")
def trial_csv(trial) -> bytes:
    return trial.to_csv(index=False).encode("utf-8")


# ------------------------------------------------------------------ guessing the roles
def test_guess_roles_from_names_and_values(trial):
    assert guess_roles(trial) == {"y": "sbp", "subject": "patient_id", "time": "weeks", "visit": "visit",
                                  "between": "arm", "cluster": None}
    assert guess_roles(lmm_teach.load_bp()) == {"y": "bp", "subject": "patient", "time": "time_num",
                                                "visit": "time", "between": None, "cluster": None}
    clinics = simulate(PRESETS["clinics"], 1)
    assert guess_roles(clinics) == {"y": "y", "subject": "subject", "time": "time", "visit": "visit",
                                    "between": None, "cluster": "clinic"}
    # camelCase names, no visit column, an arm that varies within subjects is no between factor
    df = pd.DataFrame({"patientID": ["a", "a", "b", "b"], "Week": [0, 1, 0, 1], "Score": [1.0, 2.0, 3.0, 5.0],
                       "group": ["x", "y", "x", "y"]})
    assert guess_roles(df) == {"y": "Score", "subject": "patientID", "time": "Week", "visit": None,
                               "between": None, "cluster": None}


# ------------------------------------------------------------------ alone
def test_a_good_dataframe_alone_shows_the_comparison(trial):
    before = trial.copy()
    panel = OwnDataPanel(trial, name="bp_trial.csv")
    assert panel.columns().between == "arm" and panel.file_name == "bp_trial.csv"
    assert panel.roles["cluster"].label == "(none)" and panel.columns().cluster is None  # shown, not blank
    assert "lmm-table-preview" in panel.preview.value and "patient_id" in panel.preview.value
    assert panel.analyse() is True
    assert panel.status.kind == "notes" and "subjects" in panel.status.text
    expected = analyze(trial, y="sbp", subject="patient_id", time="weeks", visit="visit", between="arm")
    pd.testing.assert_frame_equal(panel.result.lmm.fixed, expected.lmm.fixed)
    assert panel.compare_panel.result is panel.result
    est = panel.compare_panel.sources["estimates"].data
    assert len(est["estimate"]) >= 2 and set(est["hypothesis"]) >= {"time", "arm x time"}
    pd.testing.assert_frame_equal(trial, before)  # the learner's DataFrame is never modified
    # a random slope from the check box
    panel.random_slope.value = True
    assert panel.analyse() and panel.result.lmm.random_slope
    assert "(weeks | patient_id)" in panel.result.lmm.formula


def _drawn_rows(view) -> dict:
    """Source id -> rows, in the bundle a view built now would draw (read back as BokehJS does)."""
    from bokeh.document import Document
    from bokeh.models import ColumnDataSource

    bundle = json.loads(view.get_state("render_bundle")["render_bundle"])
    (doc_json,) = bundle["docs_json"].values()
    return {m.id: max(map(len, m.data.values()), default=0) for m in Document.from_json(doc_json).models
            if isinstance(m, ColumnDataSource)}


def test_the_comparison_reaches_the_browser(trial, monkeypatch):
    """Analysed, then displayed (a lesson's cell): the view built at display draws the
    comparison.  On the page, Analyse again: the change travels as a patch and the
    bundle stays (a bundle replaced under a view breaks it in BokehJS)."""
    panel = OwnDataPanel(trial, name="bp_trial.csv")
    (view,) = figures_in(panel.layout)
    estimates = panel.compare_panel.sources["estimates"]
    assert view.layout.display == "none"  # nothing to draw yet
    assert panel.analyse()
    panel._repr_mimebundle_()
    assert view.layout.display is None
    assert _drawn_rows(view)[estimates.id] == len(estimates.data["estimate"]) >= 4
    view.set_state({"_view_count": 1})  # the front end built the view
    patched = []
    monkeypatch.setattr(view, "send", lambda content, buffers=None: patched.append(content.get("payload", "")))
    bundle = view.render_bundle
    panel.roles["between"].value = "(none)"  # fewer hypotheses: different rows
    assert panel.analyse()
    assert view.render_bundle is bundle
    assert any(estimates.id in p and "ColumnDataChanged" in p for p in patched)


def test_uploading_a_csv(trial, trial_csv):
    panel = OwnDataPanel()
    panel.upload.value = _upload(trial_csv, "bp_trial.csv")
    assert panel.file_name == "bp_trial.csv" and panel.status.kind == "notes"
    pd.testing.assert_frame_equal(panel.data, trial, check_dtype=False)  # str columns may differ in dtype
    assert panel.roles["y"].value == "sbp" and panel.roles["between"].value == "arm"
    assert panel.analyse()


@pytest.mark.parametrize(("raw", "words"), [
    (b"", "is empty"),
    (b"PK\x03\x04\x00\x00binary", "not a text file"),
    (b"subject;time\n", "no data rows"),
    ("id,week,y\n1,0,caf\xe9\n".encode("latin-1"), "not UTF-8"),
])
def test_a_bad_csv_is_explained_in_the_panel(raw, words):
    panel = OwnDataPanel()
    assert panel.load_csv_bytes(raw, name="bad.csv") is False
    assert panel.status.kind == "problem" and words in panel.status.text and "bad.csv" in panel.status.text
    assert "Traceback" not in panel.status.widget.value and panel.data is None
    # the same through the upload widget: no exception escapes the observer
    panel.upload.value = _upload(raw, "bad.csv")
    assert panel.status.kind == "problem" and words in panel.status.text


@pytest.mark.parametrize(("choice", "words"), [
    ({"y": "arm", "between": None}, "'arm' (the outcome) must be numeric"),
    ({"y": "arm"}, "column 'arm' is given both as the y and as the between"),
    ({"between": "visit", "visit": None}, "'visit' (the between-subject factor) changes within subject"),
    ({"time": "visit"}, "'visit' (the time) must be numeric"),
    ({"cluster": "weeks", "time": "weeks"}, "given both as the time and as the cluster"),
    ({"cluster": "visit", "visit": None}, "clusters do not nest subjects"),
])
def test_a_wrong_column_choice_is_explained(trial, choice, words):
    panel = OwnDataPanel(trial)
    for role, column in choice.items():
        panel.roles[role].value = column
    assert panel.analyse() is False
    assert panel.status.kind == "problem" and words in panel.status.text, panel.status.text
    assert "cannot be analysed" in panel.status.text and panel.result is None


def test_nothing_loaded_or_a_missing_role_is_explained():
    panel = OwnDataPanel()
    assert panel.analyse() is False and "Upload a CSV file" in panel.status.text
    panel.load(pd.DataFrame({"id": ["a", "a", "b", "b"], "y": [1.0, 2.0, 3.0, 4.0]}))
    assert panel.roles["time"].value is None  # two columns, three required roles
    assert panel.analyse() is False and "No column is chosen as the time" in panel.status.text
    assert panel.load("not a table") is False and panel.status.kind == "problem"
    bad = OwnDataPanel(lmm_teach.load_bp(), y="blood_pressure")  # a role given by name that does not exist
    assert bad.status.kind == "problem" and "'blood_pressure'" in bad.status.text


def test_the_example_and_accessible_controls():
    panel = OwnDataPanel()
    panel.example_button.click()
    assert panel.file_name == "bp.csv" and len(panel.data) == 30 and panel.analyse()
    controls = [w for w in _walk(panel.layout)
                if isinstance(w, (widgets.Dropdown, widgets.Button, widgets.Checkbox, widgets.FileUpload))]
    assert len(controls) >= 6 + 3 + 1
    for w in controls:
        assert w.description and w.tooltip, w
    expected = {"lmm-own-data", "lmm-own-upload", "lmm-own-analyse", "lmm-own-y", "lmm-own-subject", "lmm-own-time",
                "lmm-own-visit", "lmm-own-between", "lmm-own-cluster", "lmm-status", "lmm-compare"}
    assert expected <= _classes(panel.layout)
    assert "lmm-own-back" not in _classes(panel.layout)  # alone there is no simulated data to go back to


# ------------------------------------------------------------------ inside the Explorer
@pytest.fixture(scope="module")
def explorer():
    from lmm_teach.widgets import Explorer

    return Explorer(design=Design(n_subjects=12, visit_times=(0, 1, 2), mar_dropout=0.0), seed=4)


def test_analyse_switches_the_explorer_to_the_learners_data(explorer, trial):
    assert {"Monte Carlo", "Your own data", "Show code"} <= set(explorer.extensions)
    assert not explorer.extension_errors
    panel = explorer.extensions["Your own data"]
    assert isinstance(panel, OwnDataPanel) and panel.compare_panel is None
    assert "lmm-own-back" in _classes(explorer.layout)
    panel.load(trial, name="bp_trial.csv")
    assert panel.analyse(), panel.status.text
    r = explorer.result
    assert r.design is None and r.data is trial and r.columns.between == "arm"
    assert r.lmm.n_subjects == trial["patient_id"].nunique() and explorer.error is None
    explorer.update_all_panels()
    assert len(explorer.data_panel.sources["lines"].data["subject"]) == trial["patient_id"].nunique()
    code = explorer.extensions["Show code"].code
    assert "pd.read_csv('bp_trial.csv')" in code and "between='arm'" in code
    # a wrong choice inside the Explorer: explained in the panel, the Explorer keeps the last results
    panel.roles["y"].value = "arm"
    assert panel.analyse() is False and "given both as the y and as the between" in panel.status.text
    assert explorer.result is r

    panel.roles["y"].value = "sbp"
    # the example data: the code loads them with lmm_teach, and reproduces the fit exactly
    panel.example_button.click()
    assert panel.analyse()
    code = explorer.extensions["Show code"].code
    assert "data = lmm_teach.load_bp()" in code and "read_csv" not in code
    ns: dict = {}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(code, ns)
    pd.testing.assert_frame_equal(ns["analysis"].lmm.fixed, explorer.result.lmm.fixed)

    assert panel.back_button.description == "Back to simulated data"
    panel.back_button.click()
    assert explorer.result.design == explorer.design and not panel.showing
    assert "simulated" in panel.status.text


def test_the_tab_titles_keep_their_words(explorer):
    """Seven tabs in the 640 px column cut "Your own data" to "Your own da" under the
    widget stylesheet's equal tab widths; the Explorer sizes its tabs to their titles
    (checked in a browser: JupyterLab and Notebook 7 draw every title whole)."""
    import re

    assert "Your own data" in explorer.tabs.titles and "lmm-tabs" in explorer.tabs._dom_classes
    (css,) = [w for w in _walk(explorer.layout) if "lmm-style" in getattr(w, "_dom_classes", ())]
    assert css.layout.display == "none"  # a style element needs no room
    assert re.search(r"\.lmm-tabs \{ --jp-widgets-horizontal-tab-width: auto; \}", css.value)


def test_a_design_change_replaces_the_learners_data(explorer, trial):
    panel = explorer.extensions["Your own data"]
    panel.load(trial, name="bp_trial.csv")
    assert panel.analyse() and panel.showing
    explorer.controls["n_subjects"].value = 14
    assert explorer.result.design is not None and explorer.result.lmm.n_subjects == 14
    assert not panel.showing and "shows simulated data again" in panel.status.text
    assert np.isfinite(explorer.result.lmm.loglik)


def test_docstring_examples_run():
    import doctest

    from lmm_teach.widgets import data_panel

    result = doctest.testmod(data_panel, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------ own data like a statistician
def test_a_missing_value_code_is_a_question_not_a_blood_pressure():
    from lmm_teach.widgets import data_checks

    bp = lmm_teach.load_bp()
    coded = bp.copy()
    coded.loc[[4, 17], "bp"] = -99
    before = coded.copy()
    panel = OwnDataPanel(coded, name="bp_coded.csv")
    assert [(s.column, s.value, s.n) for s in panel.sentinels] == [("bp", -99.0, 2)]
    assert "Is -99 a code for a missing measurement?" in panel.status.text and "row 5, 18" in panel.status.text
    assert panel.missing_button.layout.display is None
    assert panel.analyse() is False and panel.result is None  # not analysed silently
    assert "Is this a code for a missing value?" in panel.status.text
    assert "Treat -99 in 'bp' as missing" in panel.status.text  # the panel's buttons, not a flag
    panel.missing_button.click()
    assert panel.data["bp"].isna().sum() == 2 and panel.missing_button.layout.display == "none"
    pd.testing.assert_frame_equal(coded, before)  # the learner's table is unchanged
    assert "mask(data['bp'] == -99)" in panel.data_code
    assert panel.analyse() and panel.result.lmm.n_obs == 28
    kept = OwnDataPanel(coded)
    kept.keep_button.click()
    assert kept.analyse() and kept.result.lmm.n_obs == 30
    # a value that is merely large is no code; 99 inside the range is a value
    assert data_checks.sentinel_codes(pd.DataFrame({"y": [80, 99, 120, 150]}), "y") == []
    assert [s.value for s in data_checks.sentinel_codes(pd.DataFrame({"y": [1.2, 3.4, 2.2, 999]}), "y")] == [999]


def test_a_failed_analyse_leaves_no_stale_results(trial):
    panel = OwnDataPanel(trial)
    assert panel.analyse() and panel.compare_panel.layout.layout.display is None
    panel.roles["time"].value = "visit"  # text: cannot be the time
    assert panel.analyse() is False
    assert panel.result is None and panel.compare_panel.layout.layout.display == "none"
    assert panel.analyse() is False  # and again: nothing comes back
    panel.roles["time"].value = "weeks"
    assert panel.analyse() and panel.compare_panel.layout.layout.display is None


def test_a_failed_analyse_in_the_explorer_says_what_the_tabs_show(trial):
    from lmm_teach.widgets import Explorer

    explorer = Explorer(design=Design(n_subjects=12, visit_times=(0, 1, 2)), seed=4)
    panel = explorer.extensions["Your own data"]
    panel.load(trial)
    panel.roles["time"].value = "visit"
    assert panel.analyse() is False
    assert "The other tabs still show the simulated data, not this try" in panel.status.text


def test_wide_format_is_recognised_with_the_melt_to_copy(trial):
    long = lmm_teach.load_bp()
    wide = long.pivot(index="patient", columns="time_num", values="bp")
    wide.columns = [f"bp_{int(t)}" for t in wide.columns]
    wide = wide.reset_index()
    panel = OwnDataPanel(wide, name="bp_wide.csv")
    assert panel.wide is not None and panel.wide.value_vars == ("bp_0", "bp_1", "bp_2")
    assert "one row per patient ('patient')" in panel.status.text
    assert "data.melt(id_vars=['patient'], value_vars=['bp_0', 'bp_1', 'bp_2']" in html.unescape(panel.advice.value)
    assert "--" not in panel.status.text and "--" not in panel.wide.code
    assert panel.analyse() is False and "wide format" in panel.status.text
    ns = {"data": wide, "pd": pd}
    exec(panel.wide.code, ns)  # the code to copy runs and gives the long table
    assert len(ns["long"]) == 30 and set(ns["long"]["time"]) == {0.0, 1.0, 2.0}
    panel.long_button.click()
    assert panel.wide is None and len(panel.data) == 30
    assert panel.columns().y == "bp" and panel.columns().subject == "patient" and panel.columns().time == "time"
    assert panel.analyse() and panel.result.lmm.n_subjects == 10
    assert OwnDataPanel(trial).wide is None  # long data with numbered columns are not wide


def test_an_arm_that_changes_within_a_patient_is_an_error_naming_the_patient(trial):
    moved = trial.copy()
    first = moved["patient_id"].iloc[0]
    rows = moved.index[moved["patient_id"] == first]
    moved.loc[rows[-1], "arm"] = "treatment" if moved.loc[rows[0], "arm"] == "control" else "control"
    panel = OwnDataPanel(moved)
    assert panel.roles["between"].value == "arm"  # not dropped from the analysis without a word
    assert f"changes within patient_id {first}" in panel.status.text
    assert panel.analyse() is False
    assert f"changes within subject '{first}'" in panel.status.text and panel.result is None


def test_messages_speak_of_the_panel_not_of_command_line_flags(trial):
    panel = OwnDataPanel(trial)
    panel.roles["time"].value = "visit"
    assert panel.analyse() is False
    assert "--" not in panel.status.text and "visit column" in panel.status.text
