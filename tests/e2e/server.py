"""A throw-away Jupyter server for the browser tests.

One server per test session serves both front ends: JupyterLab at ``/lab`` and Notebook 7 at
``/notebooks`` (the ``notebook`` server extension is enabled in the venv, so ``jupyter lab``
loads it too).  Everything a run could leave behind or pick up from a person's own setup
(runtime files, workspaces, user settings, IPython profile) lives in a temporary directory;
the kernelspec and the front-end extensions of ipywidgets and jupyter_bokeh still come from
the venv's ``share/jupyter``, exactly as for a learner who ran ``make lab``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

# Settings a learner may change but a test must not depend on.  The news and update checks
# would reach the internet (and pop up a toast over the notebook).
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    """A localhost port that was free a moment ago (the server retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A server process of a test, its address and its log file."""

    process: subprocess.Popen
    base_url: str
    log_path: Path

    def log_tail(self, n_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGTERM is a Jupyter server's (and Voila's) clean stop: it shuts its kernels down first.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class JupyterServer(Served):
    """A running ``jupyter lab`` process; ``url(path)`` adds the token."""

    token: str = field(kw_only=True)
    root_dir: Path = field(kw_only=True)

    def url(self, path: str, **query: str) -> str:
        parts = [f"{k}={v}" if v != "" else k for k, v in query.items()]
        parts.append(f"token={self.token}")
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path.lstrip('/')}{sep}{'&'.join(parts)}"

    def lab_url(self, notebook: str, workspace: str) -> str:
        # A fresh named workspace plus ?reset: no layout restored from an earlier run.
        return self.url(f"lab/workspaces/{workspace}/tree/{notebook}", reset="")

    def notebook7_url(self, notebook: str) -> str:
        return self.url(f"notebooks/{notebook}")

    def api(self, method: str, path: str):
        """Call the server's REST API; returns the decoded JSON (None if empty)."""
        req = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every session and its kernel: a finished test must not keep a CPU busy."""
        for session in self.api("GET", "api/sessions"):
            self.api("DELETE", f"api/sessions/{session['id']}")


def start_server(root_dir: Path, state_dir: Path, *, app: str = "lab", timeout: float = 120.0) -> JupyterServer:
    """Start ``jupyter lab`` (or ``app="notebook"``: Notebook 7) on a free port with a random
    token, serving ``root_dir``.

    ``state_dir`` receives the isolated config, runtime, workspaces and settings directories
    and the server log.  Raises ``RuntimeError`` (with the log) if the server does not answer
    within ``timeout`` seconds.
    """
    jupyter = Path(sys.executable).with_name("jupyter")
    token = secrets.token_hex(24)
    dirs = {name: state_dir / name for name in ("config", "data", "runtime", "ipython")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    settings_dir = dirs["config"] / "lab" / "user-settings"
    for rel, content in USER_SETTINGS.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(settings_dir),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["config"] / "lab" / "workspaces"),
        IPYTHONDIR=str(dirs["ipython"]),
        # The venv's share/jupyter (kernelspec, labextensions) before any system-wide one.
        JUPYTER_PREFER_ENV_PATH="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("JUPYTER_TOKEN", None)
    log_path = state_dir / "jupyter-server.log"
    cmd = [
        str(jupyter), app,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={free_port()}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        # The default extension manager queries PyPI; the tests never install extensions.
        "--LabApp.extension_manager=readonly",
        # window.jupyterapp, to read the notebook's model (cells' execution counts).
        "--LabApp.expose_app_in_browser=True",
        "--JupyterNotebookApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            # The server writes its real address here (the port may have been retried).
            for info_file in dirs["runtime"].glob("jpserver-*.json"):
                try:
                    info = json.loads(info_file.read_text())
                except (OSError, ValueError):
                    continue  # being written
                if info.get("pid") != process.pid:
                    continue
                base = f"http://127.0.0.1:{info['port']}{info.get('base_url', '/')}"
                server = JupyterServer(process, base, log_path, token=token, root_dir=root_dir)
            if server is not None and _answers(server):
                return server
            time.sleep(0.2)  # polling for readiness, not a timing assertion
    except BaseException:
        process.kill()
        raise
    log = log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    raise RuntimeError(f"jupyter {app} did not start within {timeout:.0f} s; server log:\n{log}")


def _answers(server: JupyterServer) -> bool:
    try:
        with urllib.request.urlopen(server.url("api/status"), timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def copy_notebooks(src: Path, dst: Path) -> Path:
    """A disposable copy of ``notebooks/`` (running a lesson may write files next to it).

    Saved outputs and execution counts are removed from the copies, so that after "Run All"
    every count and every output on screen comes from this run.
    """
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for path in dst.rglob("*.ipynb"):
        strip_outputs(path)
    return dst


def strip_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, path)
