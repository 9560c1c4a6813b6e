"""The JupyterLite site: ``make lite`` builds it (offline, in its own venv), a static web server
serves it, and Chromium opens lesson 0's page from it.

What this does NOT test: running Python in the page.  The Pyodide kernel loads Pyodide and its
numpy/scipy/pandas/statsmodels from Pyodide's CDN when it starts, and this browser can reach no
host but localhost, so no cell is executed here.  The browser-only code path of lmm_teach (no
processes, no threads) is tested on CPython in tests/test_montecarlo_inline.py.
"""

from __future__ import annotations

import json

import pytest

from .app_server import REPO, serve_static
from .conftest import VIEWPORT, wait_for_lite

pytestmark = pytest.mark.timeout(2400)  # `make lite` builds a venv the first time

LESSONS = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def lite_site(chromium_path, lite_build, tmp_path_factory):
    code, log = wait_for_lite(lite_build)  # started in the background with the first browser test
    assert code == 0, f"make lite failed:\n{log}"
    site = REPO / "lite-site"
    server = serve_static(site, tmp_path_factory.mktemp("lite"))
    yield site, server
    server.stop()


def test_lite_site_holds_the_lessons_the_wheel_and_the_extensions(lite_site):
    site, _ = lite_site
    assert LESSONS and all((site / "files" / name).is_file() for name in LESSONS)
    assert (site / "files" / "data" / "bp_trial.csv").is_file()  # lesson 8's data
    index = json.loads((site / "pypi" / "all.json").read_text())
    assert "lmm-teach" in index or "lmm_teach" in index, sorted(index)[:10]
    assert list((site / "pypi").glob("lmm_teach-*-py3-none-any.whl"))
    config = json.loads((site / "jupyter-lite.json").read_text())["jupyter-config-data"]
    names = {e["name"] for e in config["federated_extensions"]}
    assert {"@jupyter-widgets/jupyterlab-manager", "@bokeh/jupyter_bokeh",
            "@jupyterlite/pyodide-kernel-extension"} <= names, names


def test_lite_serves_lesson_zero(browser, lite_site):
    site, server = lite_site
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(120_000)
    try:
        page = context.new_page()
        page.goto(server.base_url + "lab/index.html?path=00_start_here.ipynb", wait_until="load")
        heading = page.locator(".jp-Notebook .jp-MarkdownOutput h1").first
        heading.wait_for(timeout=180_000)
        assert heading.inner_text().startswith("Lesson 0"), heading.inner_text()
        # the notebook's tab says which file the site served
        assert page.locator(".lm-TabBar-tab", has_text="00_start_here.ipynb").count() >= 1
    finally:
        context.close()
