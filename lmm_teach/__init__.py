"""lmm_teach: teach linear mixed-effects models in Jupyter.

Simulate repeated-measures data, fit the linear mixed model (LMM) and the
repeated-measures ANOVA to the same data, and compare them.

The core (``Design``, ``simulate``, ``fit_lmm``, ``rm_anova``, ``analyze``,
``compare``, ``monte_carlo``) imports only numpy, scipy, pandas and statsmodels.
The widget layer (``Explorer``, ``setup``) is imported on first use, so that
plain Python use never loads ipywidgets or bokeh.
"""

from __future__ import annotations

import importlib

# The core is imported eagerly: a function that shares its module's name
# (simulate, compare) must be what ``lmm_teach.simulate`` is, even after
# something imported the submodule ``lmm_teach.simulate`` (which would
# otherwise rebind the package attribute to the module).
from lmm_teach.anova import AnovaResult, rm_anova
from lmm_teach.compare import Analysis, analyze, compare, shrinkage
from lmm_teach.datasets import load_bp
from lmm_teach.design import PRESETS, Design
from lmm_teach.lmm import LMMResult, fit_lmm
from lmm_teach.mmrm import MMRMResult, compare_covariances, fit_mmrm
from lmm_teach.montecarlo import MonteCarloResult, monte_carlo, sweep
from lmm_teach.simulate import Simulation, simulate
from lmm_teach.validate import DataError

__version__ = "0.1.0"

# The widget layer is imported on first use (PEP 562), so that plain Python
# use never loads ipywidgets or bokeh.
_LAZY = {"Explorer": "lmm_teach.widgets", "setup": "lmm_teach.widgets"}

__all__ = [
    "Analysis", "AnovaResult", "DataError", "Design", "Explorer", "LMMResult", "MMRMResult", "MonteCarloResult",
    "PRESETS", "Simulation", "analyze", "compare", "compare_covariances", "fit_lmm", "fit_mmrm", "load_bp",
    "monte_carlo", "rm_anova", "setup", "shrinkage", "simulate", "sweep",
]


def __getattr__(name: str):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'lmm_teach' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython):
    """``%load_ext lmm_teach``: load BokehJS inline once for this notebook."""
    from lmm_teach.widgets import setup

    setup()
