"""See the model work, in a real browser: drag a measurement, diagnostics, the surface, a sweep.

One notebook (40 patients x 6 visits) with the Refit panel, the Diagnostics panel, the
likelihood surface (random slope, with a path to step) and a Design panel with its sweep:

* every plot draws with finite ranges (``check_page``);
* a point dragged with the mouse (PointDrawTool) moves the patient's BLUP: the kernel
  refits and the panel says how far the patient's level moved; the time from the mouse's
  release to the redrawn shrinkage plot is measured in the browser and printed (never
  asserted);
* the surface's Play control steps the optimiser's path (the marked iterate moves);
* the sweep's Play control advances step by step and Stop stops it.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from .conftest import VIEWPORT
from .interact import _CANVAS_SIG_JS, canvas_signature, visible_text, wait_for_canvas_change
from .probe import new_notebook
from .ui import ConsoleLog, Learner, check_page, screenshot_notebook

CELLS = [
    """\
import numpy as np
import lmm_teach
from lmm_teach.design import Design
from lmm_teach.simulate import simulate
from lmm_teach.widgets.truth import subject_truth, truth_from_design
from lmm_teach.widgets.refit_panel import RefitPanel

lmm_teach.setup()
design = Design(mar_dropout=0.0)
sim = simulate(design, 1, with_truth=True)
refit = RefitPanel(sim.data, y="y", subject="subject", time="time", truth=truth_from_design(design),
                   subject_truth=subject_truth(sim))
refit""",
    """\
from lmm_teach.widgets.diagnostics_panel import DiagnosticsPanel
DiagnosticsPanel(refit.result)""",
    """\
from lmm_teach.widgets.surface_panel import SurfacePanel
m = lmm_teach.fit_lmm(sim.data, y="y", subject="subject", time="time", random_slope=True)
path = np.array([[1.0, 0.0, 1.0], [1.3, -0.02, 0.6], [1.5, -0.04, 0.3], [1.6, -0.04, 0.1], list(m.theta)])
surface = SurfacePanel(m, path=path)
surface""",
    """\
from lmm_teach.widgets.design_panel import DesignPanel
design_panel = DesignPanel(focus="Sweep")
design_panel.sweep.play.interval = 600
design_panel""",
]

# Where point 0 of the refit figure's scatter is on the screen, and its subject.
_POINT_JS = """() => {
    for (const root of document.querySelectorAll('[data-root-id]')) {
        const view = Bokeh.index.get_by_id(root.getAttribute('data-root-id'));
        if (!view || !view.model || view.model.name !== 'refit' || !view.renderer_views) continue;
        for (const rv of view.renderer_views.values()) {
            const m = rv.model;
            if (m.name !== 'points' || !m.data_source.get_length()) continue;
            const d = m.data_source.data;
            view.canvas_view.el.scrollIntoView({block: 'center', behavior: 'instant'});
            const r = view.canvas_view.el.getBoundingClientRect();
            return {x: r.left + rv.coordinates.x_scale.compute(d.x[0]),
                    y: r.top + rv.coordinates.y_scale.compute(d.y[0]), subject: String(d.subject[0])};
        }
    }
    return null;
}"""


# Press on the point, move up in small steps, release: pointer events on BokehJS's event layer.
_DRAG_JS = """([x, y, dy]) => {
    for (const root of document.querySelectorAll('[data-root-id]')) {
        const view = Bokeh.index.get_by_id(root.getAttribute('data-root-id'));
        if (!view || !view.model || view.model.name !== 'refit') continue;
        const el = view.canvas_view.events_el;
        const fire = (type, cx, cy, buttons) => el.dispatchEvent(new PointerEvent(type, {
            clientX: cx, clientY: cy, pointerId: 1, pointerType: 'mouse', isPrimary: true, button: 0,
            buttons, bubbles: true, composed: true, cancelable: true}));
        fire('pointerdown', x, y, 1);
        const n = 20;
        for (let k = 1; k <= n; k++) fire('pointermove', x, y + dy * k / n, 1);
        fire('pointerup', x, y + dy, 0);
        return true;
    }
    return false;
}"""


@pytest.fixture(scope="module")
def machinery_page(browser, jupyter, probe_dir):
    nbformat.write(new_notebook(CELLS), probe_dir / "machinery.ipynb")
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    page = context.new_page()
    learner = Learner(page, ConsoleLog().attach(page), jupyter)
    report = learner.run_all("e2e_probe/machinery.ipynb")
    yield learner, report
    context.close()
    jupyter.shutdown_kernels()


def test_every_plot_draws_with_finite_ranges(machinery_page, artifacts_dir):
    learner, report = machinery_page
    shot = screenshot_notebook(learner.page, artifacts_dir / "screenshots" / "machinery.png")
    print(f"\nmachinery notebook: {report.describe()}\nscreenshot: {shot}")
    assert not report.all_problems(), report.describe()
    # refit + shrinkage, four diagnostics, the contour: seven plots at least
    assert report.plots >= 7, report.describe()


def test_a_drag_moves_the_blup(machinery_page, artifacts_dir, measured):
    learner, _ = machinery_page
    page = learner.page
    refit = page.locator(".lmm-refit").first
    info = refit.locator(".lmm-refit-info")
    shrink = refit.locator(".lmm-bokeh").nth(1)
    previous = target = None
    for _ in range(40):  # the page lays out cells as they scroll in: wait until the point holds still
        target = page.evaluate(_POINT_JS)
        if target == previous:
            break
        previous = target
        page.wait_for_timeout(100)
    assert target is not None, "no refit figure with points on the page"
    shrink.evaluate(
        f"""el => {{
            {_CANVAS_SIG_JS}
            const w = window.__lmmDrag = {{before: __lmmSig(el), release: null, redrawn: null}};
            document.addEventListener('pointerup', () => {{ if (w.release === null) w.release = performance.now(); }},
                                      {{capture: true, once: true}});
            const tick = () => {{
                if (w.release !== null && __lmmSig(el) !== w.before) {{ w.redrawn = performance.now(); return; }}
                requestAnimationFrame(tick);
            }};
            requestAnimationFrame(tick);
        }}""")
    # The drag is dispatched inside the page, in one go: a press held still for longer than
    # BokehJS's press threshold becomes a "press" gesture, not a pan, and on a loaded machine
    # the round trips of separate mouse commands from here take that long.
    page.evaluate(_DRAG_JS, [target["x"], target["y"], -80])
    page.wait_for_function("() => window.__lmmDrag.redrawn !== null", timeout=120_000, polling=50)
    ms = page.evaluate("() => window.__lmmDrag.redrawn - window.__lmmDrag.release")
    page.wait_for_function("el => /moved/.test(el.innerText)", arg=info.element_handle(), timeout=60_000)
    text = visible_text(info)
    measured(f"Refit panel (40 x 6) in JupyterLab: mouse release -> shrinkage plot redrawn {ms:.0f} ms")
    print(text)
    m = re.search(r"(\S+) \((\d+) measurements\): its LMM level moved (-?[\d.]+) -> (-?[\d.]+)", text)
    assert m, text   # (points of several patients can sit under the pointer: all of them move)
    assert float(m.group(4)) > float(m.group(3)), text      # dragged up: the BLUP goes up
    screenshot_notebook(page, artifacts_dir / "screenshots" / "machinery_after_drag.png")
    report = check_page(page, learner.console, within=".lmm-refit")
    assert not report.all_problems(), report.describe()


def test_surface_play_steps_the_path(machinery_page):
    learner, _ = machinery_page
    page = learner.page
    surface = page.locator(".lmm-surface").first
    plot = surface.locator(".lmm-bokeh").first
    surface.scroll_into_view_if_needed()
    slider = surface.locator(".lmm-surface-step")
    before_sig = canvas_signature(plot)
    # the path ends at the optimum (step 4); Play restarts from 0 and walks it
    surface.locator(".lmm-surface-play button").first.click()
    wait_for_canvas_change(page, plot, before_sig)
    page.wait_for_function("el => /\\b4\\b/.test(el.innerText)", arg=slider.element_handle(), timeout=60_000)
    report = check_page(page, learner.console, within=".lmm-surface")
    assert not report.all_problems(), report.describe()


def test_sweep_play_advances_and_stops(machinery_page, artifacts_dir):
    learner, _ = machinery_page
    page = learner.page
    sweep = page.locator(".lmm-sweep").first
    sweep.scroll_into_view_if_needed()
    readout = sweep.locator(".lmm-sweep-readout")
    buttons = sweep.locator(".lmm-sweep-play button")
    buttons.nth(0).click()                                      # Play
    page.wait_for_function("el => /step [3-9] of/.test(el.innerText)", arg=readout.element_handle(),
                           timeout=120_000, polling=100)
    seen = visible_text(readout)
    buttons.nth(1).click()                                      # Stop (Play turns into Pause while playing)
    page.wait_for_function("el => /step 0 of/.test(el.innerText)", arg=readout.element_handle(),
                           timeout=60_000, polling=100)
    stopped = visible_text(readout)
    page.wait_for_timeout(1500)                                 # two ticks' worth: nothing moves any more
    assert visible_text(readout) == stopped
    dropout = page.locator(".lmm-control-mar-dropout .noUi-handle").first
    print(f"\nsweep: reached '{seen}', stopped at '{stopped}', MAR dropout now "
          f"{dropout.get_attribute('aria-valuenow')}")
    assert float(dropout.get_attribute("aria-valuenow")) == pytest.approx(0.0)
    screenshot_notebook(page, artifacts_dir / "screenshots" / "machinery_sweep.png")
