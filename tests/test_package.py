"""The package namespace: the public names are the functions, whatever was imported before."""

from __future__ import annotations

import subprocess
import sys


def test_function_names_survive_submodule_imports():
    # simulate and compare share their modules' names; importing the submodule
    # must not turn lmm_teach.simulate into the module.
    code = ("import lmm_teach.simulate, lmm_teach.compare, lmm_teach; "
            "print(callable(lmm_teach.simulate), callable(lmm_teach.compare))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_public_names_and_no_widgets_on_import():
    code = ("import sys, lmm_teach; missing = [n for n in lmm_teach.__all__ if n not in ('Explorer', 'setup') "
            "and not hasattr(lmm_teach, n)]; print(missing, 'bokeh' in sys.modules, 'ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] False False"


def test_widget_names_load_on_first_use():
    import lmm_teach

    assert callable(lmm_teach.setup) and lmm_teach.Explorer.__name__ == "Explorer"


def _closure(root: str) -> set[str]:
    """Names of the installed distributions ``pip install root`` pulls in (no extras), by metadata."""
    import re
    from importlib import metadata

    from packaging.requirements import Requirement

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    dists = {norm(d.metadata["Name"]): d for d in metadata.distributions()}
    todo, seen = [(norm(root), frozenset())], set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen or name not in dists:
            continue
        seen.add((name, extras))
        for line in dists[name].requires or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in (extras or {""})]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((norm(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def test_plain_install_brings_no_jupyterlab_server_or_cluster():
    # `pip install lmm-teach` is a library: the core and the widgets, not the applications.
    needed = _closure("lmm-teach")
    assert {"numpy", "scipy", "pandas", "statsmodels", "ipywidgets", "bokeh", "jupyter-bokeh"} <= needed
    for app in ("jupyterlab", "notebook", "jupyter-server", "voila", "ipykernel", "dask", "distributed",
                "jupyterlite-core", "pytest"):
        assert app not in needed, f"pip install lmm-teach pulls in {app}"
    # ... and the extras bring them.
    from importlib import metadata

    extras = {}
    for line in metadata.requires("lmm-teach"):
        if "extra ==" in line:
            extra = line.split("extra ==")[1].strip().strip("'\"")
            extras.setdefault(extra, []).append(line.split(";")[0].strip())
    assert any(r.startswith("jupyterlab") for r in extras["lab"])
    assert any(r.startswith("voila") for r in extras["app"])
    assert any(r.startswith("distributed") for r in extras["dask"])
    assert any(r.startswith("jupyterlite-core") for r in extras["lite"])
