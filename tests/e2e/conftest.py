"""Fixtures for the browser tests: one JupyterLab server and one headless Chromium per session.

Without Chromium (or the playwright package) the browser tests skip with one line saying how to
enable them; with ``LMM_TEACH_REQUIRE_BROWSER=1`` (set by ``.ci/run``) they fail instead.
Screenshots and failure captures go to ``test-artifacts/e2e/`` (git-ignored) unless
``LMM_TEACH_ARTIFACTS`` names another folder; the tests print where.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
import warnings
from pathlib import Path

import pytest

from .server import copy_notebooks, start_server
from .ui import ConsoleLog, Learner

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parents[1]
NOTEBOOKS = REPO / "notebooks"

CHROMIUM = os.environ.get("LMM_TEACH_CHROMIUM", "/usr/bin/chromium")
# The flags of the issue; the host-resolver rule makes every name but localhost unresolvable,
# so a page that needs the internet (a CDN) fails here as it would on a locked-down classroom
# network, whatever network the test machine happens to have.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
VIEWPORT = {"width": 1400, "height": 900}


_SKIPPED = pytest.StashKey[tuple]()


def pytest_collection_modifyitems(config, items):
    # Everything under tests/e2e/ is a browser test: `-m "not e2e"` leaves them out.
    e2e = [item for item in items if E2E_DIR in Path(str(item.fspath)).resolve().parents]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    reason = _browser_missing() if e2e else None
    if reason is not None and os.environ.get("LMM_TEACH_REQUIRE_BROWSER") != "1":
        # Without a browser: leave them out and say so once (see pytest_terminal_summary),
        # rather than one "skipped" line per test.
        chosen = set(map(id, e2e))
        items[:] = [item for item in items if id(item) not in chosen]
        config.hook.pytest_deselected(items=e2e)
        if hasattr(config, "workerinput"):  # a pytest-xdist worker: its summary is not shown; a warning is
            warnings.warn(pytest.PytestWarning(f"{len(e2e)} browser tests skipped: {reason}"), stacklevel=1)
        else:
            config.stash[_SKIPPED] = (len(e2e), reason)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _SKIPPED in config.stash:
        n, reason = config.stash[_SKIPPED]
        terminalreporter.write_line(f"{n} browser tests skipped: {reason}", yellow=True, bold=True)


@pytest.fixture
def measured(request):
    """``measured(text)``: print a timing or count and show it in the run's summary (with -n 2 too,
    where the printed output of a passing test is not shown; tests/conftest.py lists them)."""
    def note(text: str) -> None:
        print(f"\n{text}")
        request.node.user_properties.append(("measured", text))
    return note


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item, so that a fixture can tell that its test failed.
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed; run `make test` (it installs .[test])"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (f"no Chromium at {CHROMIUM}; enable them with `sudo apt-get install chromium` "
                "(or set LMM_TEACH_CHROMIUM to a Chromium binary)")
    return None


@pytest.fixture(scope="package")
def chromium_path() -> str:
    reason = _browser_missing()
    if reason is not None:
        if os.environ.get("LMM_TEACH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (LMM_TEACH_REQUIRE_BROWSER=1) but {reason}",
                        pytrace=False)
        pytest.skip(f"browser tests skipped: {reason}")
    return CHROMIUM


@pytest.fixture(scope="package")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("LMM_TEACH_ARTIFACTS", REPO / "test-artifacts")) / "e2e"
    shutil.rmtree(path, ignore_errors=True)  # no screenshot from an earlier run may mislead
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="package")
def jupyter(chromium_path, tmp_path_factory):
    """JupyterLab (and Notebook 7) serving a temporary copy of ``notebooks/``.

    The probe notebooks of ``test_probe.py`` are written into ``e2e_probe/`` of the same root.
    """
    base = tmp_path_factory.mktemp("jupyter")
    root = base / "root"
    if NOTEBOOKS.is_dir():
        copy_notebooks(NOTEBOOKS, root)
    else:
        root.mkdir()
    server = start_server(root, base / "state")
    yield server
    server.stop()


@pytest.fixture(scope="package")
def notebook7(jupyter, tmp_path_factory):
    """``jupyter notebook`` (Notebook 7), as a teacher may start it, on the same root."""
    server = start_server(jupyter.root_dir, tmp_path_factory.mktemp("notebook7"), app="notebook")
    yield server
    server.stop()


@pytest.fixture(scope="package")
def browser(chromium_path, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def learner(browser, jupyter, artifacts_dir, request):
    """A fresh browser context (no cookies, storage or layout shared with other tests)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    page = context.new_page()
    console = ConsoleLog().attach(page)
    yield Learner(page, console, jupyter)
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
        shot = artifacts_dir / "failures" / f"{name}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(shot))
            (shot.with_suffix(".console.txt")).write_text("\n".join(console.messages))
            print(f"\nfailure screenshot: {shot}")
        except Exception as exc:  # the page may be gone; the failure itself matters more
            print(f"\nno failure screenshot: {exc}")
    context.close()
    jupyter.shutdown_kernels()


@pytest.fixture(scope="package")
def probe_dir(jupyter) -> Path:
    path = jupyter.root_dir / "e2e_probe"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir()
    return path


# The JupyterLite build of this test run: started once in the background, by whichever process
# (pytest-xdist worker) sets up the browser tests first; any process may wait for it.  Its files are
# named by the run, so that two workers, or an earlier run's leftovers, never share them.
_LITE: dict = {}


def _lite_files(config) -> dict[str, Path]:
    run = getattr(config, "workerinput", {}).get("testrunuid") or _LITE.setdefault("run", uuid.uuid4().hex)
    return {kind: REPO / f".lite-build.{run}.{kind}" for kind in ("lock", "log", "rc")}


@pytest.fixture(scope="package", autouse=True)
def lite_build(request):
    """``make lite`` started in the background with the first browser test when test_lite.py is in
    the run: it builds a venv and a site (minutes, mostly pip) while the other tests run.
    test_lite.py waits for it (``wait_for_lite``).  One build per run, whichever process starts it."""
    if not any(item.path.name == "test_lite.py" for item in request.session.items):
        return None
    files = _lite_files(request.config)
    if "process" not in _LITE:
        try:
            os.close(os.open(files["lock"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:  # another worker of this run started it
            _LITE["process"] = None
            return files
        for old in REPO.glob(".lite-build.*.*"):  # an earlier run's files
            if old not in files.values():
                old.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        log, rc = files["log"], files["rc"]
        script = f'make lite > "{log}" 2>&1; echo $? > "{rc}.tmp"; mv "{rc}.tmp" "{rc}"'
        _LITE["process"] = subprocess.Popen(["sh", "-c", script], cwd=REPO, env=env)
        request.config.add_cleanup(_stop_lite)
    return files


def _stop_lite() -> None:
    process = _LITE.get("process")
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


def wait_for_lite(files: dict[str, Path] | None, timeout: float = 1800) -> tuple[int, str]:
    """Wait for this run's ``make lite`` (or run it now); return its exit status and log tail."""
    if files is None:
        done = subprocess.run(["make", "lite"], cwd=REPO, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout[-3000:] + done.stderr[-3000:]
    deadline = time.monotonic() + timeout
    while not files["rc"].exists():
        if time.monotonic() > deadline:
            return -1, f"make lite did not finish within {timeout:.0f} s"
        time.sleep(1.0)
    log = files["log"].read_text(errors="replace") if files["log"].exists() else ""
    log = "\n".join(line for line in log.splitlines() if "is ignored" not in line)
    return int(files["rc"].read_text().strip() or -1), log[-6000:]
