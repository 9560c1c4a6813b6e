"""Drive a notebook in JupyterLab or Notebook 7 the way a learner does, and read what they see.

Everything here looks at the browser, never at the kernel: the point of these tests is what
reaches the screen.  The DOM says what is shown; the notebook model in the page
(``window.jupyterapp``) says whether a cell ran.  Waits poll the page with generous timeouts (the machine may
be loaded); nothing sleeps a fixed time, and nothing asserts on wall-clock time.

The checks were written against the real DOM of JupyterLab 4.6 / Notebook 7.6, ipywidgets 8.1,
bokeh 3.9 and jupyter_bokeh 4.1, and proven on a probe notebook (``probe.py``,
``test_probe.py``).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .server import strip_outputs

# Generous: a lesson that fits many models on a loaded 2-core machine.
OPEN_TIMEOUT_MS = 90_000
RUN_TIMEOUT_S = 240.0
SETTLE_TIMEOUT_S = 45.0
EMPTY_GRACE_S = 8.0


# Upstream errors that do not come from lmm_teach nor change what a learner sees, each matched
# narrowly (message and the script it is thrown from) so that nothing else can hide behind it.
KNOWN_UPSTREAM_ERRORS = [
    (
        # Notebook 7.6.5, on every page load (seen with the 3-cell probe notebook, with and
        # without our user settings): its keyboard-shortcuts plugin handles a settings change
        # of '@jupyterlab/docmanager-extension:plugin' before its own settings are loaded.
        re.compile(r"Cannot read properties of undefined \(reading 'schema'\)"),
        re.compile(r"/static/notebook/notebook_core\.[0-9a-f]+\.js"),
    ),
]


@dataclass
class ConsoleLog:
    """Browser console errors and uncaught page exceptions seen by one page."""

    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def attach(self, page) -> ConsoleLog:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_pageerror)
        return self

    def _on_pageerror(self, exc) -> None:
        text = f"uncaught exception: {exc}"
        self.messages.append(text)
        stack = getattr(exc, "stack", None) or ""
        for message, source in KNOWN_UPSTREAM_ERRORS:
            if message.search(str(exc)) and source.search(stack):
                self.ignored.append(text)
                return
        self.errors.append(text)

    def _on_console(self, msg) -> None:
        text = f"console.{msg.type}: {msg.text}"
        self.messages.append(text)
        if msg.type == "error":
            loc = msg.location or {}
            url = loc.get("url") or ""
            self.errors.append(text + (f" ({url})" if url else ""))


def n_cells(path: Path) -> int:
    return len(nbformat.read(path, as_version=4).cells)


# --------------------------------------------------------------------------- opening

# The notebook's model, read through ``window.jupyterapp`` (the server runs with
# ``expose_app_in_browser``, as JupyterLab's own UI tests do).  The DOM cannot say whether a
# cell ran: a cell whose input is hidden (the lessons' exercises) shows no ``[n]:`` prompt.
_NOTEBOOK_JS = """() => {
    const app = window.jupyterapp;
    const panel = app && app.shell.currentWidget;
    if (!panel || !panel.content || !panel.sessionContext || !panel.context) return null;
    const session = panel.sessionContext.session;
    const kernel = session && session.kernel;
    return {
        path: panel.context.path,
        ready: panel.context.isReady && panel.sessionContext.isReady,
        kernel: kernel ? kernel.status : null,
        cells: panel.content.widgets.map(cell => {
            const m = cell.model;
            const outputs = m.outputs ? [...Array(m.outputs.length).keys()].map(i => m.outputs.get(i)) : [];
            return {
                type: m.type,
                blank: m.sharedModel.getSource().trim() === '',
                count: m.type === 'code' ? m.executionCount : null,
                running: m.executionState === 'running',
                error: outputs.some(o => o.type === 'error'),
            };
        }),
    };
}"""


def notebook_state(page) -> dict | None:
    """The open notebook's model: path, kernel status, and per cell its execution count."""
    return page.evaluate(_NOTEBOOK_JS)


def open_notebook(page, url: str, path: str, expected_cells: int) -> None:
    """Go to ``url`` and wait until notebook ``path`` shows all its cells and its kernel is idle.

    Works for JupyterLab and Notebook 7 (both expose the same application object).
    """
    page.goto(url, wait_until="domcontentloaded", timeout=OPEN_TIMEOUT_MS)
    page.wait_for_function(
        f"""([path, n]) => {{
            const s = ({_NOTEBOOK_JS})();
            return !!s && s.path === path && s.ready && s.kernel === 'idle' && s.cells.length === n
                && document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell').length >= n;
        }}""",
        arg=[path, expected_cells],
        timeout=OPEN_TIMEOUT_MS,
        polling=250,
    )


def run_all_cells(page) -> None:
    """Menu "Run > Run All Cells", as a teacher would say it in class."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()


def wait_until_all_ran(page, *, timeout: float = RUN_TIMEOUT_S) -> dict:
    """Wait until the kernel is idle and every non-blank code cell has an execution count.

    Stops early when a cell has an error output and nothing is running any more (the kernel
    aborts the queued cells after an error; they never get a count).  The notebook must have
    been opened without execution counts (``server.copy_notebooks`` strips them).  Returns
    the last state; raises ``TimeoutError`` naming the cells that did not run.
    """
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = notebook_state(page)
        if state and state["kernel"] == "idle":
            code = [c for c in state["cells"] if c["type"] == "code" and not c["blank"]]
            running = any(c["running"] for c in code)
            all_ran = all(c["count"] is not None for c in code)
            if not running and (all_ran or any(c["error"] for c in code)):
                return state
        page.wait_for_timeout(250)  # polling interval, not a timing assertion
    not_run = [i + 1 for i, c in enumerate(state["cells"] if state else [])
               if c["type"] == "code" and not c["blank"] and c["count"] is None]
    raise TimeoutError(f"notebook still running after {timeout:.0f} s: kernel "
                       f"{state and state['kernel']}, cells without a count: {not_run}")


# --------------------------------------------------------------------------- checking

# Walks open shadow roots: BokehJS 3 renders each plot inside a shadow DOM.
_PROBLEMS_JS = """(within) => {
    const deep = (root, sel) => {
        const found = [...root.querySelectorAll(sel)];
        for (const el of root.querySelectorAll('*')) {
            if (el.shadowRoot) found.push(...deep(el.shadowRoot, sel));
        }
        return found;
    };
    const clip = (s, n = 300) => s.replace(/\\s+/g, ' ').trim().slice(0, n);
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    // "pending" problems may still resolve (views render asynchronously); the others are final.
    const problems = [], pending = [], empty = [];
    let plots = 0, widgets = 0, hidden = 0;
    [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].forEach((cell, i) => {
        const where = `cell ${i + 1}`;
        // With `within` (a CSS selector), only the widgets and plots inside that element.
        const inside = el => !within || !!el.closest(within);
        for (const out of within ? [] : cell.querySelectorAll('.jp-OutputArea-output')) {
            const mime = out.getAttribute('data-mime-type') || '';
            const text = out.textContent || '';
            // JupyterLab 4 renders tracebacks with the stderr mime type.
            if (mime === 'application/vnd.jupyter.stderr') {
                // A traceback's last lines say what went wrong; a warning's first lines do.
                if (/Traceback|Error\\b/.test(text)) {
                    problems.push(`${where}: error output: ...${clip(text, 100000).slice(-400)}`);
                } else {
                    problems.push(`${where}: stderr output: ${clip(text)}`);
                }
            } else if (mime.includes('error')) {
                problems.push(`${where}: error output: ...${clip(text, 100000).slice(-400)}`);
            }
            // ipywidgets' renderer writes these into the output node itself.
            if (/^\\s*Error displaying widget/.test(text)) {
                problems.push(`${where}: widget: ${clip(text, 120)}`);
            } else if (/^\\s*Loading widget/.test(text)) {
                pending.push(`${where}: widget still "Loading widget..."`);
            }
        }
        // A view that threw while rendering (ipywidgets 8's error widget), e.g. a BokehModel
        // whose BokehJS never loaded.
        for (const err of cell.querySelectorAll('.jupyter-widgets-error-widget')) {
            if (inside(err)) problems.push(`${where}: widget failed to render (ipywidgets error widget)`);
        }
        // ipywidgets' WidgetRenderer is the only output that is a lumino Panel.
        if (!within) widgets += cell.querySelectorAll('.jp-OutputArea-output.lm-Panel').length;
        // Every bokeh root (show() output or a jupyter_bokeh BokehModel) must hold a drawn
        // canvas (BokehJS creates it when the view renders) and every plot in it must have
        // finite, non-empty axis ranges: a plot whose data never reached the browser draws
        // an empty frame without axes ("could not set initial ranges").
        for (const root of cell.querySelectorAll('[data-root-id]')) {
            if (!inside(root)) continue;
            const id = root.getAttribute('data-root-id');
            // The root is `display: contents`; its parent tells whether it is on screen
            // (a plot in a tab that is not selected is not drawn until the tab is opened).
            if (!root.parentElement.checkVisibility()) { hidden += 1; continue; }
            plots += 1;
            const canvases = deep(root, 'canvas').filter(c => c.width > 0 && c.height > 0);
            if (canvases.length === 0) {
                pending.push(`${where}: bokeh plot ${id} has no drawn canvas`);
                continue;
            }
            const view = window.Bokeh && Bokeh.index && Bokeh.index.get_by_id(id);
            if (!view) { pending.push(`${where}: bokeh plot ${id} has no BokehJS view`); continue; }
            const figures = [];
            const walk = v => {
                if (v.model && v.model.x_range && v.model.y_range) figures.push(v);
                for (const c of (v.child_views || [])) walk(c);
            };
            walk(view);
            for (const f of figures) {
                const m = f.model;
                const ok = r => Number.isFinite(r.start) && Number.isFinite(r.end) && r.start !== r.end;
                if (!ok(m.x_range) || !ok(m.y_range)) {
                    const title = m.title && m.title.text ? `"${m.title.text}"` : m.id;
                    empty.push(`${where}: bokeh plot ${title} is empty: no data in the browser `
                        + `(axis ranges x ${m.x_range.start}..${m.x_range.end}, `
                        + `y ${m.y_range.start}..${m.y_range.end})`);
                }
            }
        }
    });
    return {problems, pending, empty, plots, widgets, hidden};
}"""


@dataclass
class PageReport:
    """What the learner sees after running a notebook."""

    problems: list[str]
    plots: int
    widgets: int
    console_errors: list[str]
    hidden_plots: int = 0

    def all_problems(self) -> list[str]:
        # The same console error repeats once per redraw: one line each, with its count.
        counts: dict[str, int] = {}
        for e in self.console_errors:
            counts[e] = counts.get(e, 0) + 1
        console = [f"browser {e}" + (f" (x{n})" if n > 1 else "") for e, n in counts.items()]
        return self.problems + console

    def describe(self) -> str:
        lines = [f"{self.plots} bokeh plot(s) drawn, {self.hidden_plots} in closed tabs, "
                 f"{self.widgets} widget view(s)"]
        lines += [f"  - {p}" for p in self.all_problems()]
        return "\n".join(lines)


def check_page(page, console: ConsoleLog, *, settle: float = SETTLE_TIMEOUT_S,
               within: str | None = None) -> PageReport:
    """Read the notebook's problems, letting widgets and plots finish rendering first.

    Widget views and bokeh canvases appear asynchronously after the kernel is idle; poll until
    nothing is pending any more ("Loading widget...", a plot without its canvas) or ``settle``
    seconds pass, then report what is there.  A drawn plot without data gets ``EMPTY_GRACE_S``
    only: the kernel is idle, so its data would have arrived by then.  With ``within`` (a CSS selector), only the
    widgets and plots inside that element are checked (no outputs, no widget count).
    """
    start = time.monotonic()
    while True:
        found = page.evaluate(_PROBLEMS_JS, within)
        elapsed = time.monotonic() - start
        if elapsed >= settle or not found["pending"] and (not found["empty"] or elapsed >= EMPTY_GRACE_S):
            break
        page.wait_for_timeout(250)  # polling interval
    return PageReport(found["problems"] + found["pending"] + found["empty"], found["plots"],
                      found["widgets"], list(console.errors), found["hidden"])


def wait_frames(page, n: int = 2) -> None:
    """Wait until the browser has painted ``n`` more frames (layout and redraw done)."""
    page.evaluate(
        """(n) => new Promise(done => {
            const step = k => k ? requestAnimationFrame(() => step(k - 1)) : done();
            step(n);
        })""",
        n,
    )


def screenshot_notebook(page, path: Path) -> Path:
    """A screenshot of the whole notebook, not only the visible part.

    The notebook scrolls inside a fixed layout, so a full-page screenshot would show only
    the top: make the window as tall as the notebook for the shot, then restore it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate(
        """() => {
            const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')
                || document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
            return nb ? nb.scrollHeight - nb.clientHeight : 0;
        }"""
    )
    tall = min(size["height"] + int(height) + 50, 20_000)
    page.set_viewport_size({"width": size["width"], "height": tall})
    try:
        page.evaluate(
            """() => {
                for (const el of document.querySelectorAll(
                        '.jp-NotebookPanel .jp-WindowedPanel-outer, .jp-NotebookPanel .jp-Notebook')) {
                    el.scrollTop = 0;
                }
                window.scrollTo(0, 0);
            }"""
        )
        wait_frames(page)  # let bokeh re-layout at the new size before the shot
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)
    return path


# --------------------------------------------------------------------------- the learner

class Learner:
    """One browser tab with its console log, on the session's Jupyter server."""

    def __init__(self, page, console: ConsoleLog, server):
        self.page = page
        self.console = console
        self.server = server

    def open(self, notebook: str, *, ui: str = "lab") -> Path:
        """Open ``notebook`` (relative to the server root) in "lab" or Notebook 7 ("notebook")."""
        path = self.server.root_dir / notebook
        # An earlier test may have left this copy saved with its outputs (JupyterLab autosaves):
        # start from no execution counts, so that every count seen comes from this run.
        strip_outputs(path)
        if ui == "lab":
            # A new named workspace plus ?reset: no layout restored from an earlier run.
            url = self.server.lab_url(notebook, workspace=f"e2e-{uuid.uuid4().hex[:10]}")
        else:
            url = self.server.notebook7_url(notebook)
        open_notebook(self.page, url, notebook, n_cells(path))
        if ui == "lab":
            # More room for the notebook (and its screenshot): fold the file browser away.
            self.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
        return path

    def run_all(self, notebook: str, *, ui: str = "lab", timeout: float = RUN_TIMEOUT_S,
                settle: float = SETTLE_TIMEOUT_S) -> PageReport:
        """Open ``notebook``, run all its cells, wait for them, and report what is on screen."""
        self.open(notebook, ui=ui)
        run_all_cells(self.page)
        wait_until_all_ran(self.page, timeout=timeout)
        return check_page(self.page, self.console, settle=settle)
