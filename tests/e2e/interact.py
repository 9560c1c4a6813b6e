"""What a learner does with the Explorer: keyboard on a slider, "New sample", a preset, a tab,
a short Monte Carlo study.  Elements are found by the stable ``lmm-...`` CSS classes of
``lmm_teach.widgets``; plots are compared by what their canvases show.
"""

from __future__ import annotations

import re

from .ui import wait_frames

# A fingerprint of what the canvases under an element show (BokehJS 3 draws inside shadow
# roots, hence the walk).  Two calls give the same number iff every canvas has the same pixels
# (up to hash collisions).
_CANVAS_SIG_JS = """
const __lmmDeep = (root, sel) => {
    const found = [...root.querySelectorAll(sel)];
    for (const el of root.querySelectorAll('*')) {
        if (el.shadowRoot) found.push(...__lmmDeep(el.shadowRoot, sel));
    }
    return found;
};
const __lmmSig = el => {
    let h = 0;
    for (const c of __lmmDeep(el, 'canvas')) {
        if (!c.width || !c.height) continue;
        const d = c.toDataURL();
        for (let i = 0; i < d.length; i++) h = (Math.imul(h, 31) + d.charCodeAt(i)) | 0;
        h = (Math.imul(h, 31) + d.length) | 0;
    }
    return h;
};
"""


def canvas_signature(locator) -> int:
    """Fingerprint of the pixels of every canvas under ``locator``'s element."""
    return locator.evaluate(f"el => {{ {_CANVAS_SIG_JS} return __lmmSig(el); }}")


def open_tab(scope, title: str) -> None:
    """Select the tab ``title`` of the Explorer's result tabs (``.lmm-tabs``)."""
    tab = scope.locator(".lmm-tabs .lm-TabBar-tab", has_text=re.compile(rf"^\s*{re.escape(title)}\s*$"))
    tab.click()
    tab.locator("xpath=.").and_(scope.locator(".lm-TabBar-tab.lm-mod-current")).wait_for()


def tab_titles(scope) -> list[str]:
    return [t.strip() for t in scope.locator(".lmm-tabs .lm-TabBar-tab").all_text_contents()]


def visible_text(locator) -> str:
    return re.sub(r"\s+", " ", locator.inner_text()).strip()


def deep_text(locator) -> str:
    """The text of an element including its (nested) open shadow roots, spaces collapsed."""
    return re.sub(r"\s+", " ", locator.evaluate(
        """el => {
            const text = n => n.nodeType === Node.TEXT_NODE ? n.textContent
                : ['STYLE', 'SCRIPT'].includes(n.nodeName) ? ''
                : [...(n.shadowRoot ? n.shadowRoot.childNodes : []), ...n.childNodes].map(text).join(' ');
            return text(el);
        }""")).strip()


def wait_for_text_change(page, locator, before: str, *, timeout_ms: int = 120_000) -> str:
    """Wait until ``locator``'s visible text differs from ``before``; return the new text."""
    page.wait_for_function(
        """([el, before]) => el.innerText.replace(/\\s+/g, ' ').trim() !== before""",
        arg=[locator.element_handle(), before],
        timeout=timeout_ms,
        polling=100,
    )
    return visible_text(locator)


def press_slider_key_and_time_redraw(page, handle, plot, key: str = "ArrowRight", *, text=None,
                                     timeout_ms: int = 120_000) -> dict:
    """Press ``key`` on a slider ``handle`` and wait until the canvases of ``plot`` change.

    Returns ``{"plot": ms, "text": ms}``: milliseconds from the key's release (``keyup``) to the
    first animation frame in which the plot's pixels differ, and in which the text of the
    element ``text`` differs (NaN without ``text``), measured in the browser with
    ``performance.now()``.  They include the kernel's work (simulate, fit, compare) and the
    round trips between browser and kernel.
    """
    plot.evaluate(
        f"""(el, textEl) => {{
            {_CANVAS_SIG_JS}
            const norm = e => e ? e.innerText.replace(/\\s+/g, ' ').trim() : '';
            const w = window.__lmmWatch = {{
                before: __lmmSig(el), text: norm(textEl), release: null, redrawn: null,
                retexted: textEl ? null : NaN,
            }};
            document.addEventListener('keyup', () => {{
                if (w.release === null) w.release = performance.now();
            }}, {{capture: true, once: true}});
            const tick = () => {{
                if (window.__lmmWatch !== w) return;  // a newer watch replaced this one
                if (w.release !== null) {{
                    const now = performance.now();
                    if (w.retexted === null && norm(textEl) !== w.text) w.retexted = now;
                    if (w.redrawn === null && __lmmSig(el) !== w.before) w.redrawn = now;
                    if (w.redrawn !== null && w.retexted !== null) return;
                }}
                requestAnimationFrame(tick);
            }};
            requestAnimationFrame(tick);
        }}""",
        text.element_handle() if text is not None else None,
    )
    handle.focus()
    handle.press(key)
    page.wait_for_function(
        "() => window.__lmmWatch.redrawn !== null && window.__lmmWatch.retexted !== null",
        timeout=timeout_ms, polling=100)
    return page.evaluate(
        "() => ({plot: window.__lmmWatch.redrawn - window.__lmmWatch.release,"
        "        text: window.__lmmWatch.retexted - window.__lmmWatch.release})")


def wait_for_canvas_change(page, plot, before: int, *, timeout_ms: int = 120_000) -> None:
    """Wait until the canvases under ``plot`` show something else than fingerprint ``before``."""
    page.wait_for_function(
        f"""([el, before]) => {{ {_CANVAS_SIG_JS} return __lmmSig(el) !== before; }}""",
        arg=[plot.element_handle(), before],
        timeout=timeout_ms,
        polling=250,
    )


_HOVER_TARGET_JS = """() => {
    if (!window.Bokeh || !Bokeh.index) return null;
    for (const root of document.querySelectorAll('.jp-NotebookPanel [data-root-id]')) {
        if (!root.parentElement.checkVisibility()) continue;
        const view = Bokeh.index.get_by_id(root.getAttribute('data-root-id'));
        if (!view || !view.renderer_views || !view.model.toolbar) continue;
        if (!view.model.toolbar.tools.some(t => t.type === 'HoverTool')) continue;
        for (const rv of view.renderer_views.values()) {
            const m = rv.model;
            if (!m.glyph || m.glyph.type !== 'Scatter' || !m.data_source.get_length()) continue;
            const d = m.data_source.data;
            view.canvas_view.el.scrollIntoView({block: 'center', behavior: 'instant'});
            const r = view.canvas_view.el.getBoundingClientRect();
            return {
                x: r.left + rv.coordinates.x_scale.compute(d.x[0]),
                y: r.top + rv.coordinates.y_scale.compute(d.y[0]),
                label: d.subject !== undefined ? String(d.subject[0]) : '0',
            };
        }
    }
    return null;
}"""


def hover_first_point(page) -> str | None:
    """Move the mouse onto the first point of the first scatter glyph of a visible bokeh plot
    that has a HoverTool; return that point's ``subject`` (or "0" when the data have no subject
    column), None without such a plot.
    """
    # Cells above the plot are laid out as they scroll into view (content-visibility), which
    # moves the plot: scroll and measure until the position holds still.
    target = previous = None
    for _ in range(40):
        target = page.evaluate(_HOVER_TARGET_JS)
        if target is None or target == previous:
            break
        previous = target
        wait_frames(page, 3)
    if target is None:
        return None
    # Come from outside, as a hand does, so that the hover tool sees the mouse enter.
    page.mouse.move(target["x"] - 40, target["y"] - 40)
    page.mouse.move(target["x"], target["y"], steps=5)
    return target["label"]


# --------------------------------------------------------------------------- drag a measurement

# The BokehJS view of the visible figure named ``name`` (``new_figure(name=...)``), with the
# ``.lmm-bokeh`` element that holds it.
_FIGURE_JS = """
const __lmmFigure = name => {
    for (const root of document.querySelectorAll('[data-root-id]')) {
        if (!root.parentElement || !root.parentElement.checkVisibility()) continue;
        const view = window.Bokeh && Bokeh.index && Bokeh.index.get_by_id(root.getAttribute('data-root-id'));
        if (view && view.model && view.model.name === name) {
            return {view, el: root.closest('.lmm-bokeh') || root.parentElement};
        }
    }
    return null;
};
const __lmmSource = (view, name) => {
    for (const rv of view.renderer_views.values()) {
        const ds = rv.model.data_source;
        if (ds && ds.name === name) return ds;
    }
    return null;
};
"""

# Where point ``k`` of the figure's draggable points (renderer "points") is on the screen.
_POINT_JS = f"""([figure, k]) => {{
    {_FIGURE_JS}
    const found = __lmmFigure(figure);
    if (!found) return null;
    const view = found.view;
    for (const rv of view.renderer_views.values()) {{
        const m = rv.model;
        if (m.name !== 'points' || m.data_source.get_length() <= k) continue;
        const d = m.data_source.data;
        view.canvas_view.el.scrollIntoView({{block: 'center', behavior: 'instant'}});
        const r = view.canvas_view.el.getBoundingClientRect();
        return {{x: r.left + rv.coordinates.x_scale.compute(d.x[k]),
                 y: r.top + rv.coordinates.y_scale.compute(d.y[k]), subject: String(d.subject[k])}};
    }}
    return null;
}}"""

# Press on the point, move up in small steps, release: pointer events on BokehJS's event layer,
# dispatched in one go inside the page (a press held still longer than BokehJS's press threshold
# is a "press", not a pan, and on a loaded machine separate mouse commands from Python take that
# long).
_DRAG_JS = f"""([figure, x, y, dy]) => {{
    {_FIGURE_JS}
    const found = __lmmFigure(figure);
    if (!found) return false;
    const el = found.view.canvas_view.events_el;
    const fire = (type, cx, cy, buttons) => el.dispatchEvent(new PointerEvent(type, {{
        clientX: cx, clientY: cy, pointerId: 1, pointerType: 'mouse', isPrimary: true, button: 0,
        buttons, bubbles: true, composed: true, cancelable: true}}));
    fire('pointerdown', x, y, 1);
    const n = 20;
    for (let k = 1; k <= n; k++) fire('pointermove', x, y + dy * k / n, 1);
    fire('pointerup', x, y + dy, 0);
    return true;
}}"""


def point_on_screen(page, figure: str, k: int = 0) -> dict | None:
    """Screen position and subject of point ``k`` of ``figure``'s draggable points, once it holds still.

    Cells above are laid out as they scroll into view, which moves the plot: measure until two
    readings agree.
    """
    previous = target = None
    for _ in range(40):
        target = page.evaluate(_POINT_JS, [figure, k])
        if target is not None and target == previous:
            break
        previous = target
        wait_frames(page, 3)
    return target


def drag_point_and_time_redraw(page, figure: str, target: dict, dy: float, watch: dict[str, str],
                               *, timeout_ms: int = 120_000) -> dict:
    """Drag the point at ``target`` by ``dy`` pixels and time what the kernel's answer redraws.

    ``watch`` maps figure names to the name of one of their data sources that the kernel's
    answer changes (e.g. ``{"shrinkage": "subjects"}``).  Returns, per figure, milliseconds from
    the mouse's release (``pointerup``) to the end of the figure's first repaint (BokehJS's
    ``repainted`` signal) after that source's new data arrived, measured in the browser with
    ``performance.now()``; ``"all"`` is the latest of them, ``"arrived"`` the arrival times.
    They include the round trips between browser and kernel and the kernel's refit.  Nothing is
    read from a canvas while the browser handles the drag; afterwards ``"changed"`` says, per
    figure, whether its pixels differ from those before the drag.
    """
    page.evaluate(
        f"""(watch) => {{
            {_FIGURE_JS}
            {_CANVAS_SIG_JS}
            const w = window.__lmmDrag = {{release: null, arrived: {{}}, drawn: {{}}, missing: [], figures: {{}}}};
            for (const [name, source] of Object.entries(watch)) {{
                const found = __lmmFigure(name);
                const ds = found && __lmmSource(found.view, source);
                if (!ds) {{ w.missing.push(name); continue; }}
                w.figures[name] = {{el: found.el, before: __lmmSig(found.el)}};
                const painted = () => {{
                    if (w.arrived[name] !== undefined && w.drawn[name] === undefined) w.drawn[name] = performance.now();
                }};
                const mark = () => {{
                    if (w.release === null || w.arrived[name] !== undefined) return;
                    w.arrived[name] = performance.now();
                    found.view.repainted.connect(painted);
                }};
                ds.change.connect(mark);
                ds.properties.data.change.connect(mark);
            }}
            document.addEventListener('pointerup', () => {{
                if (w.release === null) w.release = performance.now();
            }}, {{capture: true, once: true}});
        }}""",
        watch,
    )
    missing = page.evaluate("() => window.__lmmDrag.missing")
    if missing:
        raise AssertionError(f"no figure (or source) to watch: {missing}")
    assert page.evaluate(_DRAG_JS, [figure, target["x"], target["y"], dy]), f"no figure {figure!r}"
    page.wait_for_function(
        "(n) => Object.keys(window.__lmmDrag.drawn).length === n", arg=len(watch), timeout=timeout_ms,
        polling=50)
    out = page.evaluate(
        f"""() => {{
            {_CANVAS_SIG_JS}
            const w = window.__lmmDrag, drawn = {{}}, arrived = {{}}, changed = {{}};
            for (const [k, t] of Object.entries(w.drawn)) drawn[k] = t - w.release;
            for (const [k, t] of Object.entries(w.arrived)) arrived[k] = t - w.release;
            for (const [k, f] of Object.entries(w.figures)) changed[k] = __lmmSig(f.el) !== f.before;
            return {{drawn, arrived, changed}};
        }}""")
    times = dict(out["drawn"])
    times["all"] = max(times.values())
    times["arrived"] = out["arrived"]
    times["changed"] = out["changed"]
    return times
