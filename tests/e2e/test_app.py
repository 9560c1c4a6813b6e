"""The app link: ``make app``'s Voila page, as a learner in a class opens it.

One Voila server (the Makefile's command line, limits from the environment as a teacher sets
them) and one page, shared by the tests in order: the page shows the Explorer with no code;
BokehJS comes from the server, not a CDN (every name but localhost is unresolvable in this
browser); a slider moved with the keyboard redraws a plot; a Monte Carlo study runs until its
progress bar is full and its charts draw; the replicates box stops at the server's limit; and
the page's kernel refuses code sent to it over the page's own kernel connection.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from .app_server import start_voila
from .conftest import VIEWPORT
from .interact import canvas_signature, open_tab, press_slider_key_and_time_redraw, visible_text
from .ui import ConsoleLog

MAX_REPS = 300  # the server's limit in this test (LMM_TEACH_MAX_REPS)
MAX_SUBJECTS = 120


@pytest.fixture(scope="module")
def voila(chromium_path, tmp_path_factory):
    server = start_voila(tmp_path_factory.mktemp("voila"),
                         env_extra={"LMM_TEACH_MAX_REPS": str(MAX_REPS),
                                    "LMM_TEACH_MAX_SUBJECTS": str(MAX_SUBJECTS)})
    yield server
    server.stop()


class AppPage:
    def __init__(self, page, console, requests, response_html, voila):
        self.page, self.console, self.requests = page, console, requests
        self.html = response_html
        self.voila = voila
        self.explorer = page.locator(".lmm-explorer").first


_PLOTS_JS = """(sel) => {
    const deep = (root, s) => {
        const found = [...root.querySelectorAll(s)];
        for (const el of root.querySelectorAll('*')) if (el.shadowRoot) found.push(...deep(el.shadowRoot, s));
        return found;
    };
    let drawn = 0, waiting = 0;
    for (const root of document.querySelectorAll(sel + ' [data-root-id]')) {
        if (!root.parentElement.checkVisibility()) continue;
        const ok = deep(root, 'canvas').some(c => c.width > 0 && c.height > 0)
            && window.Bokeh && Bokeh.index && Bokeh.index.get_by_id(root.getAttribute('data-root-id'));
        if (ok) drawn += 1; else waiting += 1;
    }
    return {drawn, waiting};
}"""


def drawn_plots(page, scope: str) -> int:
    """Wait until every visible bokeh plot under ``scope`` has drawn; return how many there are."""
    page.wait_for_function(f"() => {{ const r = ({_PLOTS_JS})({json.dumps(scope)}); "
                           "return r.drawn > 0 && r.waiting === 0; }", timeout=120_000, polling=250)
    return page.evaluate(_PLOTS_JS, scope)["drawn"]


@pytest.fixture(scope="module")
def app_page(browser, voila):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(120_000)
    page = context.new_page()
    console = ConsoleLog().attach(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        response = page.goto(voila.base_url, wait_until="load", timeout=240_000)
        html = response.text()
        page.locator(".lmm-explorer .lmm-design").wait_for(timeout=240_000)
        yield AppPage(page, console, requests, html, voila)
    except Exception:
        print(f"\nvoila log:\n{voila.log_tail()}")
        raise
    finally:
        context.close()


def test_app_page_shows_the_explorer_and_no_code(app_page):
    p = app_page
    page = p.page
    assert page.locator(".lmm-explorer").count() == 1
    # No code: no input area or editor on the page, and the notebook's source is not in it.
    inputs = page.locator(".jp-InputArea, .jp-InputPrompt, .cm-editor, .CodeMirror, .jp-CodeCell .jp-Editor")
    assert inputs.count() == 0, "the app page shows code inputs"
    for text in (p.html, page.content()):
        assert "explorer_app" not in text and "refuse_code_requests" not in text
    body = visible_text(page.locator("body"))
    assert "import " not in body and "explorer_app" not in body
    # The plots draw with BokehJS from the server (no CDN can be reached from this browser).
    assert drawn_plots(page, ".lmm-explorer") >= 1
    outside = [u for u in p.requests if not u.startswith(p.voila.base_url) and not u.startswith(("data:", "blob:"))]
    assert outside == [], f"the app page asked for outside resources: {outside[:5]}"
    assert not p.console.errors, "\n".join(p.console.errors)
    # The server's limit is the slider's end.
    handle = p.explorer.locator(".lmm-control-n-subjects .noUi-handle")
    assert float(handle.get_attribute("aria-valuemax")) == MAX_SUBJECTS


def test_app_slider_changes_a_plot(app_page, measured):
    p = app_page
    open_tab(p.explorer, "Compare")
    plot = p.explorer.locator(".lmm-compare .lmm-bokeh").first
    drawn_plots(p.page, ".lmm-compare")
    table = p.explorer.locator(".lmm-compare-table")
    handle = p.explorer.locator(".lmm-control-n-subjects .noUi-handle")
    before = float(handle.get_attribute("aria-valuenow"))
    sig = canvas_signature(plot)
    timing = press_slider_key_and_time_redraw(p.page, handle, plot, "ArrowRight", text=table)
    assert float(handle.get_attribute("aria-valuenow")) > before
    assert canvas_signature(plot) != sig
    measured(f"app page: slider release -> comparison plot redrawn in {timing['plot']:.0f} ms")
    assert not p.console.errors, "\n".join(p.console.errors)


def test_app_monte_carlo_runs_with_progress(app_page):
    p = app_page
    page = p.page
    open_tab(p.explorer, "Monte Carlo")
    mc = p.explorer.locator(".lmm-montecarlo")
    reps = mc.locator(".lmm-mc-reps input")
    reps.fill("20")
    reps.press("Enter")
    page.wait_for_function("el => el.value === '20'", arg=reps.element_handle(), timeout=60_000)
    # Progress is seen while the study runs: record every width the bar shows.
    bar = mc.locator(".lmm-mc-progress .progress-bar")
    bar.evaluate("""el => {
        window.__lmmWidths = [];
        new MutationObserver(() => window.__lmmWidths.push(el.style.width))
            .observe(el, {attributes: true, attributeFilter: ['style']});
    }""")
    mc.locator(".lmm-mc-run").click()
    page.wait_for_function(
        "el => el.classList.contains('progress-bar-success') && el.style.width === '100%'",
        arg=bar.element_handle(), timeout=300_000, polling=250)
    done = visible_text(mc.locator(".lmm-mc-progress-text"))
    assert re.match(r"20 of 20 replicates", done), done
    widths = page.evaluate("() => window.__lmmWidths")
    partial = [w for w in widths if w not in ("0%", "100%", "")]
    print(f"\napp page, Monte Carlo: {done}; the bar showed {widths}")
    assert partial, f"the progress bar never showed a partial study: {widths}"
    assert drawn_plots(page, ".lmm-montecarlo") >= 3
    assert "What the study shows" in visible_text(mc.locator(".lmm-mc-reading"))
    assert not p.console.errors, "\n".join(p.console.errors)


_SEND_CODE_JS = """async ([base, code, msgId]) => {
    // An execute_request, then a kernel_info_request, over one connection to the page's kernel;
    // record the messages each gets back until the info request's reply and 3 s more.
    const config = JSON.parse(document.getElementById('jupyter-config-data').textContent);
    const url = base.replace(/^http/, 'ws') + 'api/kernels/' + config.kernelId + '/channels?session_id=' + msgId;
    const ws = new WebSocket(url);
    const ids = {execute: msgId + '-execute', info: msgId + '-info'};
    const seen = {execute: [], info: []};
    const request = (id, type, content) => JSON.stringify({
        header: {msg_id: id, username: 'learner', session: msgId, msg_type: type, version: '5.3',
                 date: new Date().toISOString()},
        parent_header: {}, metadata: {}, channel: 'shell', buffers: [], content});
    return await new Promise(resolve => {
        const timer = setTimeout(() => resolve({error: 'no kernel_info_reply within 60 s', seen}), 60000);
        ws.onerror = e => { clearTimeout(timer); resolve({error: 'websocket ' + String(e.type)}); };
        ws.onopen = () => {
            ws.send(request(ids.execute, 'execute_request', {code, silent: false, store_history: false,
                user_expressions: {}, allow_stdin: false, stop_on_error: true}));
            ws.send(request(ids.info, 'kernel_info_request', {}));
        };
        ws.onmessage = ev => {
            if (typeof ev.data !== 'string') return;
            const msg = JSON.parse(ev.data);
            const parent = msg.parent_header && msg.parent_header.msg_id;
            for (const key of ['execute', 'info']) if (parent === ids[key]) seen[key].push(msg.msg_type);
            if (parent === ids.info && msg.msg_type === 'kernel_info_reply') {
                clearTimeout(timer);
                setTimeout(() => { ws.close(); resolve(seen); }, 3000);
            }
        };
    });
}"""


def test_app_kernel_refuses_code_sent_to_it(app_page, tmp_path):
    """What a learner with the browser's developer tools could try: send code over the page's own
    kernel connection.  Voila's server passes on only the widgets' messages (comms) and kernel info:
    it drops the ``execute_request`` (and logs it), so the code never reaches the kernel.  A
    ``kernel_info_request`` sent after it over the same connection is answered, which shows the
    connection works and the silence is the refusal.  (Behind that, the kernel itself refuses code:
    ``refuse_code_requests``, checked at the kernel in tests/test_app.py.)"""
    p = app_page
    marker = tmp_path / "ran.txt"
    code = f"open({str(marker)!r}, 'w').write('ran')"
    answer = p.page.evaluate(_SEND_CODE_JS, [p.voila.base_url, code, uuid.uuid4().hex])
    assert "error" not in answer, answer
    assert "kernel_info_reply" in answer["info"], answer
    assert answer["execute"] == [], f"the page's kernel handled code sent to it: {answer}"
    assert not marker.exists(), "the page's kernel ran code sent to it"
    log = p.voila.log_tail(50_000)
    assert 'Received message of type "execute_request", which is not allowed' in log, log[-2000:]
