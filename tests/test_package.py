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
