"""The Explorer on a class's screens: every control beside its plot, every theme readable, named sliders.

* At 1366 x 768 in JupyterLab with the file browser open (a cell about 1000 px wide), in Notebook 7
  at 1366 x 768, and in JupyterLab at 1920 x 1080: the results sit beside the controls, and for
  every control (its section opened, the control scrolled into view as a learner scrolls to it)
  the control and the visible tab's main plot intersect the visible part of the notebook at the
  same time.  The slider-release-to-redraw time is printed (not asserted).
* In JupyterLab Dark, every text the package renders (status, tables, exercises, code, Monte Carlo
  texts, controls) has a WCAG AA contrast of at least 4.5:1 against its background.
* Playwright's accessibility snapshot names every slider once, by its label.

Screenshots of each size and of the dark theme go to the artifacts folder.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from .interact import open_tab, press_slider_key_and_time_redraw
from .probe import new_notebook
from .ui import ConsoleLog, Learner, check_page, wait_frames

EXPLORER = """\
import lmm_teach
from lmm_teach.widgets.exercise import ChoiceExercise, NumberExercise

lmm_teach.setup()
explorer = lmm_teach.Explorer(lmm_teach.Design(n_subjects=40, visit_times=(0, 1, 2, 3, 4, 5)), seed=1)
explorer"""

EXERCISES = """\
wrong = NumberExercise("What is 2 + 2?", 4, tolerance=0, hint="Count on your fingers.")
wrong.check(5)
right = ChoiceExercise("Which is larger?", ["1", "2"], "2", explanation="Two is one more than one.")
right.check("2")
info = NumberExercise("Type something", 1)
info.check("abc")
display(wrong.layout, right.layout, info.layout)"""

SIZES = {
    "lab-1366x768-file-browser": ("lab", {"width": 1366, "height": 768}),
    "notebook7-1366x768": ("notebook", {"width": 1366, "height": 768}),
    "lab-1920x1080": ("lab", {"width": 1920, "height": 1080}),
}

# Whether a learner sees some of an element: points of its box inside the window where the browser's
# hit test finds the element itself (or a part of it) on top, so clipping by the notebook's scrolling
# area, covering and scrolling are all taken into account.
_ON_SCREEN_JS = """el => {
    const r = el.getBoundingClientRect();
    const top = Math.max(r.top, 0), bottom = Math.min(r.bottom, innerHeight);
    const left = Math.max(r.left, 0), right = Math.min(r.right, innerWidth);
    if (bottom - top < 2 || right - left < 2) return false;
    for (let i = 1; i < 8; i++) {
        for (let j = 1; j < 4; j++) {
            const x = left + (right - left) * i / 8, y = top + (bottom - top) * j / 4;
            const hit = document.elementFromPoint(x, y);
            if (hit && (el === hit || el.contains(hit))) return true;
        }
    }
    return false;
}"""

_RECT_JS = ("el => { const r = el.getBoundingClientRect(); "
            "return {top: r.top, left: r.left, bottom: r.bottom, right: r.right}; }")


@pytest.fixture(scope="module")
def laptop_notebook(probe_dir) -> str:
    nbformat.write(new_notebook([EXPLORER, EXERCISES]), probe_dir / "laptop.ipynb")
    return "e2e_probe/laptop.ipynb"


def _open(browser, server, notebook, ui, viewport):
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(60_000)
    page = context.new_page()
    learner = Learner(page, ConsoleLog().attach(page), server)
    report = learner.run_all(notebook, ui=ui)
    return context, learner, report


def _main_plot(explorer):
    """The first figure of the visible result tab."""
    return explorer.locator(".lmm-results .lmm-bokeh:visible").first


def _open_every_section(explorer) -> None:
    toggles = explorer.locator(".lmm-group-toggle")
    for i in range(toggles.count()):
        t = toggles.nth(i)
        if "mod-active" not in (t.get_attribute("class") or ""):
            t.click()


@pytest.mark.parametrize("size", list(SIZES))
def test_every_control_beside_the_main_plot(size, browser, jupyter, notebook7, laptop_notebook, artifacts_dir,
                                            measured):
    ui, viewport = SIZES[size]
    server = jupyter if ui == "lab" else notebook7
    context, learner, report = _open(browser, server, laptop_notebook, ui, viewport)
    try:
        page = learner.page
        assert not report.all_problems(), report.describe()
        if size.endswith("file-browser"):
            # Learner.open folds the file browser away: a learner has it open.
            page.evaluate("() => window.jupyterapp.shell.activateById('filebrowser')")
            page.locator("#filebrowser").wait_for(state="visible")
            wait_frames(page, 4)
        explorer = page.locator(".lmm-explorer").first
        cell_width = explorer.evaluate("el => el.closest('.jp-OutputArea-output').getBoundingClientRect().width")
        design = explorer.locator(".lmm-design")
        results = explorer.locator(".lmm-results")
        d, r = design.evaluate(_RECT_JS), results.evaluate(_RECT_JS)
        print(f"\n{size}: output area {cell_width:.0f} px wide; controls {d['right'] - d['left']:.0f} px, "
              f"results {r['right'] - r['left']:.0f} px")
        assert r["left"] >= d["right"] - 1 and r["top"] < d["bottom"], \
            f"{size}: the results wrapped below the controls (controls {d}, results {r})"

        _open_every_section(explorer)  # the worst case: every section open, the column at its longest
        wait_frames(page, 2)
        plot = _main_plot(explorer)
        controls = explorer.locator(".lmm-design .lmm-control")
        n = controls.count()
        assert n >= 20, n
        missed = []
        for i in range(n):
            control = controls.nth(i)
            control.evaluate("el => el.scrollIntoView({block: 'nearest'})")
            wait_frames(page, 1)
            c, p = control.evaluate(_ON_SCREEN_JS), plot.evaluate(_ON_SCREEN_JS)
            if not (c and p):
                name = control.evaluate("el => [...el.classList].find(c => c.startsWith('lmm-control-'))")
                cr, pr = control.evaluate(_RECT_JS), plot.evaluate(_RECT_JS)
                missed.append(f"{name}: control {cr['top']:.0f}..{cr['bottom']:.0f} ({'on' if c else 'off'} "
                              f"screen), plot {pr['top']:.0f}..{pr['bottom']:.0f} ({'on' if p else 'off'} screen)")
        print(f"{size}: {n - len(missed)} of {n} controls on screen together with the main plot")
        shot = artifacts_dir / "screenshots" / f"laptop_{size}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        print(f"screenshot: {shot}")
        assert not missed, f"{size}: control and main plot not on screen together:\n" + "\n".join(missed)

        # The slider-release-to-redraw time, with the learner's plot in view (not asserted; in
        # JupyterLab, as test_explorer measures it).
        if ui != "lab":
            return
        handle = explorer.locator(".lmm-control-sd-residual .noUi-handle")
        handle.evaluate("el => el.scrollIntoView({block: 'nearest'})")
        timing = press_slider_key_and_time_redraw(page, handle, plot, "ArrowRight")
        measured(f"{size}: slider release -> Data plot redrawn (40 patients x 6 visits): {timing['plot']:.0f} ms")
    finally:
        context.close()
        server.shutdown_kernels()


# WCAG 2 contrast of every text node's element (and of inputs' values) under the package's
# panels and exercises, against the background it is drawn on (ancestors' backgrounds composed,
# opacity applied).  Disabled controls are exempt (WCAG 1.4.3); the figures' own text is drawn
# on a canvas on their light card, not here.
_CONTRAST_JS = """(selector) => {
    const parse = c => {
        const m = c && c.match(/rgba?\\(([^)]+)\\)/);
        if (!m) return null;
        const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
        return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const over = (top, base) => [0, 1, 2].map(k => top[k] * top[3] + base[k] * (1 - top[3]));
    const background = el => {
        const layers = [];
        for (let e = el; e; e = e.parentElement) {
            const c = parse(getComputedStyle(e).backgroundColor);
            if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
        }
        let base = [255, 255, 255];
        for (let i = layers.length - 1; i >= 0; i--) base = over(layers[i], base);
        return base;
    };
    const opacity = el => {
        let o = 1;
        for (let e = el; e; e = e.parentElement) o *= +getComputedStyle(e).opacity;
        return o;
    };
    const lum = rgb => {
        const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
        return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
    };
    const out = [];
    let checked = 0;
    for (const root of document.querySelectorAll(selector)) {
        for (const el of [root, ...root.querySelectorAll('*')]) {
            if (el.closest('.lmm-bokeh, style, script, [aria-hidden="true"] svg')) continue;
            const own = [...el.childNodes].some(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
            const field = (el.matches('input[type="text"], input[type="number"], select, textarea') && el.value);
            if (!own && !field) continue;
            if (!el.getClientRects().length || !el.checkVisibility({visibilityProperty: true})) continue;
            const r = el.getBoundingClientRect();
            if (r.width < 1 || r.height < 1) continue;  // the sliders' hidden labels: no pixels
            if (el.closest(':disabled, [disabled], .mod-disabled')) continue;
            const bg = background(el);
            const fgc = parse(getComputedStyle(el).color);
            const fg = over([fgc[0], fgc[1], fgc[2], fgc[3] * opacity(el)], bg);
            const l1 = lum(fg), l2 = lum(bg);
            const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
            checked += 1;
            if (ratio < 4.5) {
                const text = (field ? el.value : el.textContent).replace(/\\s+/g, ' ').trim().slice(0, 60);
                const cls = (el.className && el.className.baseVal === undefined ? el.className : '').slice(0, 60);
                out.push(`${ratio.toFixed(2)}:1 <${el.tagName.toLowerCase()} class="${cls}"> "${text}" `
                    + `colour rgb(${fg.map(Math.round)}) on rgb(${bg.map(Math.round)})`);
            }
        }
    }
    return {checked, low: out};
}"""


def test_dark_theme_contrast_and_slider_names(browser, jupyter, laptop_notebook, artifacts_dir):
    context, learner, report = _open(browser, jupyter, laptop_notebook, "lab", {"width": 1366, "height": 900})
    page = learner.page
    try:
        assert not report.all_problems(), report.describe()
        explorer = page.locator(".lmm-explorer").first
        _open_every_section(explorer)

        # Screen readers: every slider is named by its label, once.
        sliders = explorer.locator(".lmm-design .lmm-control.widget-slider")
        n_sliders = sliders.count()
        page.wait_for_function(
            "n => document.querySelectorAll('.lmm-design .noUi-handle[aria-labelledby]').length >= n",
            arg=n_sliders, timeout=30_000)
        snapshot = explorer.locator(".lmm-design").aria_snapshot()
        named = re.findall(r'- slider "([^"]+)"', snapshot)
        bare = re.findall(r"- slider(?: \[|:|$)", snapshot, flags=re.M)
        print(f"\naccessibility snapshot: {len(named)} named sliders of {n_sliders}, e.g. {named[:3]}")
        assert len(named) == n_sliders and not bare, snapshot
        # Read once: the name is not also a separate text or label.  (A dropdown may offer a knob by its
        # name as an option, e.g. the sweep's "knob to move": that is a choice, not a second label.)
        read = "\n".join(line for line in snapshot.splitlines() if not line.lstrip().startswith("- option "))
        for name in named:
            assert len(re.findall(re.escape(name), read)) == 1, (name, snapshot)

        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                      "{theme: 'JupyterLab Dark'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=60_000)
        wait_frames(page, 4)
        low, checked = [], 0
        tabs = [t.strip() for t in explorer.locator(".lmm-tabs .lm-TabBar-tab").all_text_contents()]
        for title in tabs:
            open_tab(explorer, title)
            if title == "Your own data":
                explorer.locator(".lmm-own-example").click()
                page.wait_for_function(
                    "() => /Loaded/.test(document.querySelector('.lmm-own-data .lmm-status').innerText)")
            check_page(page, learner.console, settle=10)
            wait_frames(page, 2)
            found = page.evaluate(_CONTRAST_JS, ".lmm-panel, .lmm-exercise")
            checked += found["checked"]
            low += [f"[{title}] {line}" for line in found["low"]]
            shot = artifacts_dir / "screenshots" / f"dark_{title.replace(' ', '_')}.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot))
        print(f"JupyterLab Dark: {checked} text elements checked in {len(tabs)} tabs and 3 exercises; "
              f"{len(set(low))} below 4.5:1")
        assert not low, "text below WCAG AA contrast in JupyterLab Dark:\n" + "\n".join(sorted(set(low)))
    finally:
        # The server keeps the theme in its user settings: give the next tests their light theme back.
        try:
            page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                          "{theme: 'JupyterLab Light'})")
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'", timeout=60_000)
        except Exception as exc:  # the page may be gone; the test's own outcome matters more
            print(f"could not restore the light theme: {exc}")
        context.close()
        jupyter.shutdown_kernels()
