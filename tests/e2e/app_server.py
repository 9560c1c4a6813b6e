"""Throw-away servers for the browser tests of the app link (Voila) and the JupyterLite site.

Both run as a teacher runs them (``make app`` runs the same ``voila`` command line; a JupyterLite
site is static files) on a free localhost port, with config and runtime files in a temporary
directory.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from .server import Served, free_port

REPO = Path(__file__).resolve().parents[2]


def voila_command(port: int) -> tuple[list[str], dict]:
    """The ``voila`` command line of ``make app`` and the variables it sets (read from the
    Makefile, so the test runs what a teacher runs), with the venv's ``voila`` and ``port``."""
    text = (REPO / "Makefile").read_text()
    recipe = re.search(r"^app:.*\n((?:\t.*\n)+)", text, re.M)
    if recipe is None:
        raise AssertionError("the Makefile has no `app:` target")
    line = recipe.group(1).replace("\\\n", " ")
    values = {"$(APP_IP)": "127.0.0.1", "$(APP_PORT)": str(port), "$(CURDIR)": str(REPO)}
    args = []
    for a in shlex.split(line.strip()):
        for k, v in values.items():
            a = a.replace(k, v)
        args.append(a)
    env = {}
    while args and re.match(r"^[A-Z_]+=", args[0]):
        name, _, value = args.pop(0).partition("=")
        env[name] = value
    assert args[0] == "$(BIN)/voila", args
    out = [str(Path(sys.executable).with_name("voila")), *args[1:]]
    bad = [a for a in out + list(env.values()) if "$(" in a]
    assert not bad, f"unexpected make variables in the app recipe: {bad}"
    return out, env


def _wait_for_port(process, port: int, log_path: Path, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)  # polling for readiness, not a timing assertion
    log = log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s; log:\n{log}")


def isolated_env(state_dir: Path, **extra: str) -> dict:
    dirs = {name: state_dir / name for name in ("config", "data", "runtime", "ipython")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
               JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), IPYTHONDIR=str(dirs["ipython"]),
               JUPYTER_PREFER_ENV_PATH="1", PYTHONUNBUFFERED="1", **extra)
    return env


def start_voila(state_dir: Path, *, env_extra: dict | None = None, timeout: float = 120.0) -> Served:
    """``make app``'s Voila on a free port, from the repository folder."""
    port = free_port()
    log_path = state_dir / "voila.log"
    state_dir.mkdir(parents=True, exist_ok=True)
    command, make_env = voila_command(port)
    env = isolated_env(state_dir, **make_env, **(env_extra or {}))
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    _wait_for_port(process, port, log_path, timeout, "voila")
    return Served(process, f"http://127.0.0.1:{port}/", log_path)


def serve_static(root: Path, state_dir: Path, *, timeout: float = 60.0) -> Served:
    """A plain static file server over ``root`` (what any web host does with a JupyterLite site)."""
    port = free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "http.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                    "--directory", str(root)], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    _wait_for_port(process, port, log_path, timeout, "http.server")
    return Served(process, f"http://127.0.0.1:{port}/", log_path)
