"""The widget layer without the Explorer: controls, the Design panel, batching,
status, setup(), and the import boundary between the core and the widgets.

Panels are driven from plain Python (set ``.value``, read the state), as
anywidget and ipympl test theirs; browser tests live in tests/e2e.
"""

from __future__ import annotations

import subprocess
import sys

import ipywidgets as widgets
import pytest
from widget_tree import walk as _walk

from lmm_teach.design import FIELDS, PRESETS, Design
from lmm_teach.widgets import DesignPanel, Explorer, setup
from lmm_teach.widgets import notebook as nb
from lmm_teach.widgets.base import Batcher, StatusArea
from lmm_teach.widgets.controls import format_times, make_control, parse_times, set_control, visible_label
from lmm_teach.widgets.explain import explain_error


def test_core_never_imports_bokeh_or_ipywidgets():
    """House style: the core runs without the widget stack (fresh interpreter)."""
    code = (
        "import sys, lmm_teach\n"
        "from lmm_teach import design, simulate, anova, compare, montecarlo, validate, lmm\n"
        "lmm_teach.Design; lmm_teach.simulate; lmm_teach.fit_lmm; lmm_teach.rm_anova\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('bokeh', 'ipywidgets', 'jupyter_bokeh'))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_plots_do_not_import_ipywidgets():
    code = ("import sys, lmm_teach.plots\n"
            "assert 'ipywidgets' not in sys.modules\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


# --------------------------------------------------------------------- controls
@pytest.mark.parametrize("name", list(FIELDS))
def test_every_field_has_an_accessible_control(name):
    info = FIELDS[name]
    w = make_control(info, getattr(Design(), name))
    assert w.description and w.tooltip  # read by screen readers (label, title)
    assert info.description[:20].lower() in w.tooltip.lower()
    if hasattr(w, "continuous_update"):
        assert w.continuous_update is False  # updates on release
    if info.kind in ("int", "float"):
        assert (w.min, w.max) == (info.min, info.max)
    assert f"lmm-control-{name.replace('_', '-')}" in w._dom_classes


def test_controls_show_units_in_the_label_and_the_tooltip():
    info = FIELDS["time_jitter"]
    w = make_control(info, 0.0)
    assert info.unit in w.tooltip and info.unit in w.description  # what a screen reader reads
    assert info.unit in visible_label(info).value and info.label in visible_label(info).value
    assert "(patients)" not in make_control(FIELDS["n_subjects"], 40).description  # the label says it
    p = DesignPanel()
    shown = " ".join(w.value for w in _walk(p.layout) if isinstance(w, widgets.HTML))
    assert all(FIELDS[n].unit in shown for n in ("sd_residual", "slope", "mcar"))



def test_set_control_widens_a_slider_instead_of_clipping():
    info = FIELDS["n_subjects"]
    w = make_control(info, 40)
    set_control(w, info, 2 * int(info.max))
    assert w.value == 2 * int(info.max)


def test_visit_times_round_trip_and_errors():
    assert parse_times(format_times((0.0, 1.0, 2.5, 12.0))) == (0.0, 1.0, 2.5, 12.0)
    assert parse_times("0;1  2,4") == (0.0, 1.0, 2.0, 4.0)
    with pytest.raises(ValueError, match="'x' is not a number"):
        parse_times("0, 1, x")


# ---------------------------------------------------------------------- batching
def test_batcher_coalesces_nested_holds():
    calls = []
    b = Batcher()
    b.on_change(lambda: calls.append("x"))
    b.changed()
    assert calls == ["x"]
    with b.hold():
        b.changed()
        with b.hold():
            b.changed()
        assert calls == ["x"]  # inner block's end does not fire
    assert calls == ["x", "x"]
    with b.hold():
        pass
    assert calls == ["x", "x"]  # nothing changed, nothing fired


# ------------------------------------------------------------------ design panel
@pytest.fixture
def panel():
    p = DesignPanel(seed=5)
    p.calls = []

    def record():
        try:
            p.calls.append(p.design)
        except ValueError as exc:  # an invalid design is still a change
            p.calls.append(exc)
    p.on_change(record)
    return p


def test_design_panel_starts_from_any_design():
    d = Design(n_subjects=12, visit_times=(0, 2, 7), arms=True, arm_effect=3.0, sd_slope=0.5)
    p = DesignPanel(d, seed=9)
    assert p.design == d
    assert p.seed.value == 9
    assert p.random_slope.value is True  # the design has a random slope
    assert set(p.controls) == set(FIELDS)


def test_each_control_change_is_one_update(panel):
    panel.controls["n_subjects"].value = 20
    panel.controls["visit_times"].value = "0, 1, 3"
    assert [d.n_subjects for d in panel.calls] == [20, 20]
    assert panel.calls[-1].visit_times == (0.0, 1.0, 3.0)


def test_preset_is_one_update_and_named(panel):
    panel.preset.value = "30 % MCAR"
    assert len(panel.calls) == 1
    assert panel.calls[0] == PRESETS["30 % MCAR"]
    panel.controls["mcar"].value = 0.2  # no longer the preset
    assert panel.preset.value != "30 % MCAR"
    panel.controls["mcar"].value = 0.3  # the preset again
    assert panel.preset.value == "30 % MCAR"
    assert len(panel.calls) == 3


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_applies_in_one_update(panel, name):
    panel.apply_preset(name)
    assert panel.calls == [PRESETS[name]]
    assert panel.random_slope.value is (PRESETS[name].sd_slope > 0)


def test_hold_batches_several_controls(panel):
    with panel.hold():
        panel.controls["arms"].value = True
        panel.controls["arm_effect"].value = 4.0
        panel.controls["arm_slope_effect"].value = -1.0
    assert len(panel.calls) == 1
    assert panel.calls[0].true_effects() == {"time": -1.0, "arm": 4.0, "time:arm": -1.0}


def test_new_sample_is_the_next_seed(panel):
    panel.new_sample.click()
    assert panel.seed.value == 6
    assert len(panel.calls) == 1


def test_invalid_design_is_explained_in_the_panel(panel):
    panel.controls["visit_times"].value = "0"
    assert panel.status.kind == "problem"
    assert "visit_times" in panel.status.text and "at least two" in panel.status.text
    with pytest.raises(ValueError):
        _ = panel.design
    panel.controls["visit_times"].value = "0, 1"
    assert panel.status.kind != "problem"


def test_design_panel_css_classes(panel):
    assert {"lmm-panel", "lmm-design"} <= set(panel.layout._dom_classes)
    assert "lmm-seed" in panel.seed._dom_classes
    assert "lmm-new-sample" in panel.new_sample._dom_classes
    assert "lmm-preset" in panel.preset._dom_classes


def test_panel_displays_as_its_layout(panel):
    bundle = panel._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.layout.model_id


# ------------------------------------------------------------------------ status
def test_status_area_escapes_and_announces():
    s = StatusArea()
    s.show(["a <b> note"], title="What to notice")
    assert "a &lt;b&gt; note" in s.widget.value
    assert "aria-live" in s.widget.value and s.kind == "notes"
    s.problem("Title", "why", hint="what to do")
    assert s.kind == "problem" and "what to do" in s.text
    assert "lmm-status" in s.widget._dom_classes


def test_explain_error_never_shows_a_traceback():
    from numpy.linalg import LinAlgError

    from lmm_teach.validate import DataError

    for exc in (DataError("column 'y' is empty"), LinAlgError("Singular matrix"), ValueError("bad"),
                RuntimeError("boom"), ZeroDivisionError("x")):
        title, explanation, hint = explain_error(exc)
        assert title and hint
        assert "Traceback" not in explanation
        assert "last results" in hint


# ------------------------------------------------------------------------ setup()
def test_setup_outside_a_notebook_does_nothing(monkeypatch):
    import IPython

    # Outside a notebook there is no IPython shell (an earlier test may have left one in this process).
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert nb.in_notebook() is False
    assert setup() is False


def test_setup_loads_bokehjs_inline_and_panels_once_per_kernel(monkeypatch, panel):
    import bokeh.io
    from bokeh.resources import INLINE

    calls = []
    monkeypatch.setattr(bokeh.io, "output_notebook", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(nb, "in_notebook", lambda: True)
    monkeypatch.setitem(nb._LOADED, "bokehjs", False)
    panel._repr_mimebundle_()  # the first panel displayed loads BokehJS ...
    panel._repr_mimebundle_()  # ... once per kernel
    assert len(calls) == 1
    (args, kwargs), = calls
    assert args[0] is INLINE and kwargs == {"hide_banner": True}  # inline: works offline
    # An explicit setup() loads again: a reloaded page has lost BokehJS, the kernel has not.
    assert setup() is True and len(calls) == 2
    panel._repr_mimebundle_()
    assert len(calls) == 2


def test_load_ext_calls_setup(monkeypatch):
    import lmm_teach

    seen = []
    monkeypatch.setattr("lmm_teach.widgets.setup", lambda: seen.append(1))
    lmm_teach.load_ipython_extension(None)
    assert seen == [1]


def test_embed_wraps_a_figure_as_a_widget():
    from jupyter_bokeh import BokehModel

    from lmm_teach.plots import make_spaghetti_figure
    from lmm_teach.widgets import embed

    fig, _ = make_spaghetti_figure()
    model = embed(fig)
    assert isinstance(model, BokehModel) and isinstance(model, widgets.DOMWidget)
    assert "lmm-bokeh" in model._dom_classes


def test_teaching_notes_say_each_thing_once():
    """The core's specific warning wins; the panel's own explanation fills a gap."""
    from types import SimpleNamespace

    from lmm_teach.widgets.explain import teaching_notes

    core = ("Singular fit: the variance between subjects is estimated as 0 (core wording).",
            "The RM-ANOVA could not be computed: only 1 of 4 subjects has all visits.")
    a = SimpleNamespace(lmm=SimpleNamespace(singular=True, converged=False), anova=None,
                        warnings=core, notes=("The RM-ANOVA needs subjects with every visit.",))
    notes = teaching_notes(a)
    assert notes[:2] == list(core)
    assert sum("singular" in n.lower() for n in notes) == 1
    assert sum("anova" in n.lower() for n in notes) == 1
    assert any("did not fully converge" in n for n in notes)  # not worded by the core: added
    quiet = SimpleNamespace(lmm=SimpleNamespace(singular=False, converged=True), anova=object(),
                            warnings=(), notes=("a note for the Compare tab",))
    assert teaching_notes(quiet) == []


def test_fixed_table_names_the_df_method():
    """The HTML fixed-effects table says which df it shows (fit_lmm's df argument)."""
    from lmm_teach import load_bp
    from lmm_teach.lmm import fit_lmm
    from lmm_teach.widgets.tables import fixed_table

    bp = load_bp()
    kw = dict(y="bp", subject="patient", time="time_num")
    assert "df (Satterthwaite)" in fixed_table(fit_lmm(bp, **kw))
    assert "df (Kenward-Roger)" in fixed_table(fit_lmm(bp, df="kenward-roger", **kw))


# --- a Design panel that fits a laptop ------------------------------------------------------

def test_sections_fold_and_the_lessons_controls_come_first():
    from lmm_teach.widgets.design_panel import DesignPanel

    panel = DesignPanel()
    assert [k for k, s in panel.sections.items() if s.opened] == ["Study", "Model"]
    folded = panel.sections["Missing data"]
    assert folded.body.layout.display == "none" and folded.toggle.icon == "chevron-right"
    folded.toggle.value = True  # one click away
    assert folded.body.layout.display is None and folded.toggle.icon == "chevron-down"

    lesson = DesignPanel(focus=["mcar", "mar_dropout", "Missing data"])
    first = lesson.sections["Lesson"]
    assert list(lesson.sections)[0] == "Lesson" and first.opened
    shown = [w for w in first.body.children]
    assert lesson.controls["mcar"] in shown[0].children and lesson.controls["mar_dropout"] in shown[1].children
    assert lesson.sections["Missing data"].opened and not lesson.sections["Study"].opened
    # each control appears once
    from widget_tree import walk

    found = [w for w in walk(lesson.layout) if w is lesson.controls["mcar"]]
    assert len(found) == 1
    with pytest.raises(ValueError, match="neither a control"):
        DesignPanel(focus=["dropout"])
    assert Explorer.__init__.__kwdefaults__["focus"] is None


def test_dependent_controls_are_disabled_while_their_switch_is_off():
    from lmm_teach.widgets.design_panel import DesignPanel

    panel = DesignPanel(Design(arms=False))
    arm = ["arm_effect", "arm_slope_effect", "allocation"]
    assert all(panel.controls[n].disabled for n in arm)
    panel.controls["arms"].value = True
    assert not any(panel.controls[n].disabled for n in arm)
    assert panel.controls["sd_clinic"].disabled
    panel.controls["n_clinics"].value = 3
    assert not panel.controls["sd_clinic"].disabled
    assert panel.controls["corr_intercept_slope"].disabled == (panel.design.sd_slope == 0)
    panel.set_design(PRESETS["MAR dropout"])
    assert not panel.controls["dropout_strength"].disabled and panel.controls["mnar_driver"].disabled
    assert panel.controls["arm_effect"].disabled == (not PRESETS["MAR dropout"].arms)


def test_every_colour_in_the_panels_html_follows_the_theme():
    """Text colours and backgrounds come from JupyterLab's variables (the dark theme once showed white
    text on near-white): a hex colour is only allowed for borders, the figures' card and the page CSS."""
    import re
    from pathlib import Path

    import lmm_teach.widgets as w

    offenders = []
    for path in Path(w.__file__).parent.glob("*.py"):
        if path.name == "page.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            for m in re.finditer(r"(?<![-\w])(color|background)\s*:\s*#[0-9a-fA-F]{3,6}", line):
                offenders.append(f"{path.name}:{i}: {m.group(0)}")
    assert offenders == []
