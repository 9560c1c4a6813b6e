"""Drag a measurement in the Explorer's LMM tab, with the mouse, in JupyterLab and Notebook 7.

The Explorer at its default design (40 patients x 6 visits): open the LMM tab, switch on
"Drag a measurement", drag one point up and let go.  The kernel refits on an edited copy and
the patient's BLUP goes up (the line under the controls says by how much); the status says
the data were edited by hand.  The time from the mouse's release to the redrawn fitted-lines,
shrinkage and variance plots is measured in the browser and printed (never asserted: the
machine is shared).  "Reset data" brings back the fixed-effects table as it was.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from .conftest import VIEWPORT
from .interact import drag_point_and_time_redraw, open_tab, point_on_screen, visible_text
from .probe import new_notebook
from .ui import ConsoleLog, Learner, check_page, screenshot_notebook

EXPLORER = """\
import lmm_teach

lmm_teach.setup()
explorer = lmm_teach.Explorer(seed=1)
explorer"""

# What the kernel's answer to a drag redraws, by figure: a source it changes.
WATCH = {"fit": "subjects", "shrinkage": "subjects", "variance": "variance"}
DRAG_PX = -80   # up


@pytest.fixture(scope="module")
def drag_notebook(probe_dir) -> str:
    nbformat.write(new_notebook([EXPLORER]), probe_dir / "drag.ipynb")
    return "e2e_probe/drag.ipynb"


def _drag_a_measurement(learner: Learner, where: str, artifacts_dir, measured) -> None:
    page = learner.page
    explorer = page.locator(".lmm-explorer").first
    open_tab(explorer, "LMM")
    lmm = explorer.locator(".lmm-lmm")
    fixed = lmm.locator(".lmm-lmm-fixed")
    info = lmm.locator(".lmm-drag-info")
    status = explorer.locator(".lmm-results .lmm-status").first
    # The tab is drawn when it is opened: wait for its table.
    page.wait_for_function("el => /estimate/.test(el.innerText)", arg=fixed.element_handle(), timeout=60_000)
    fixed_before = visible_text(fixed)
    lmm.locator(".lmm-drag-mode").click()
    target = None
    for _ in range(3):   # the points arrive with the kernel's answer to the switch
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-root-id]')].some(root => {
                const v = Bokeh.index.get_by_id(root.getAttribute('data-root-id'));
                return v && v.model.name === 'fit' && [...v.renderer_views.values()].some(
                    rv => rv.model.name === 'points' && rv.model.data_source.get_length() > 0);
            })""", timeout=60_000, polling=100)
        target = point_on_screen(page, "fit")
        if target is not None:
            break
    assert target is not None, "no draggable points in the LMM tab's figure"
    console_before = len(learner.console.errors)

    ms = drag_point_and_time_redraw(page, "fit", target, DRAG_PX, WATCH)
    page.wait_for_function("el => /moved/.test(el.innerText)", arg=info.element_handle(), timeout=60_000)
    text = visible_text(info)
    measured(f"Explorer (40 x 6) in {where}, drag a measurement: mouse release -> plots redrawn: "
             f"fitted lines {ms['fit']:.0f} ms, shrinkage {ms['shrinkage']:.0f} ms, variance components "
             f"{ms['variance']:.0f} ms, all {ms['all']:.0f} ms (kernel: {_kernel_ms(text)})")
    print(text)
    assert all(ms["changed"].values()), ms   # the plots show something new
    m = re.search(r"(\S+) \((\d+) measurements?\): its BLUP moved ([-+][\d.]+) -> ([-+][\d.]+)", text)
    assert m, text   # (points of several patients can sit under the pointer: all of them move)
    assert float(m.group(4)) > float(m.group(3)), text      # dragged up: the BLUP goes up
    assert "edited" in visible_text(status), visible_text(status)
    page.wait_for_function("([el, t]) => el.innerText.replace(/\\s+/g, ' ').trim() !== t",
                           arg=[fixed.element_handle(), fixed_before], timeout=60_000)
    shot = screenshot_notebook(page, artifacts_dir / "screenshots" / f"drag_{where.replace(' ', '_')}.png")
    print(f"screenshot: {shot}")
    report = check_page(page, learner.console, within=".lmm-explorer")
    assert not report.problems, report.describe()
    assert not learner.console.errors[console_before:], "\n".join(learner.console.errors[console_before:])

    # Reset data: the table as it was before the drag, the status back to the simulation's notes.
    lmm.locator(".lmm-drag-reset").click()
    page.wait_for_function("([el, t]) => el.innerText.replace(/\\s+/g, ' ').trim() === t",
                           arg=[fixed.element_handle(), fixed_before], timeout=60_000)
    page.wait_for_function("el => !/edited/.test(el.innerText)", arg=status.element_handle(), timeout=60_000)


def _kernel_ms(info: str) -> str:
    """The kernel's share, as the panel reports it ("refit 96 ms": the refit and everything it sends)."""
    m = re.search(r"refit (\d+) ms", info)
    return f"{m.group(1)} ms" if m else "?"


def test_a_drag_moves_the_blup_in_lab(browser, jupyter, drag_notebook, artifacts_dir, measured):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        learner = Learner(page, ConsoleLog().attach(page), jupyter)
        report = learner.run_all(drag_notebook)
        assert not report.all_problems(), report.describe()
        _drag_a_measurement(learner, "JupyterLab", artifacts_dir, measured)
    finally:
        context.close()
        jupyter.shutdown_kernels()


def test_a_drag_moves_the_blup_in_notebook7(browser, notebook7, drag_notebook, artifacts_dir, measured):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        learner = Learner(page, ConsoleLog().attach(page), notebook7)
        report = learner.run_all(drag_notebook, ui="notebook")
        assert not report.all_problems(), report.describe()
        _drag_a_measurement(learner, "Notebook 7", artifacts_dir, measured)
    finally:
        context.close()
        notebook7.shutdown_kernels()
