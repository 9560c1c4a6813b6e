"""lmm_teach: teach linear mixed-effects models in Jupyter.

Simulate repeated-measures data, fit the linear mixed model (LMM) and the
repeated-measures ANOVA to the same data, and compare them.

The core (``Design``, ``simulate``, ``fit_lmm``, ``rm_anova``, ``compare``,
``monte_carlo``) imports only numpy, scipy, pandas and statsmodels.  The widget
layer (``Explorer``, ``setup``) is imported on first use, so that plain Python
use never loads ipywidgets or bokeh.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily (PEP 562) so that importing
# lmm_teach stays cheap and the core never pulls in the widget stack.
_EXPORTS = {
    "DataError": "lmm_teach.validate",
    "Design": "lmm_teach.design",
    "simulate": "lmm_teach.simulate",
    "load_bp": "lmm_teach.datasets",
    "fit_lmm": "lmm_teach.lmm",
    "LMMResult": "lmm_teach.lmm",
    "rm_anova": "lmm_teach.anova",
    "AnovaResult": "lmm_teach.anova",
    "compare": "lmm_teach.compare",
    "monte_carlo": "lmm_teach.montecarlo",
    "sweep": "lmm_teach.montecarlo",
    "Explorer": "lmm_teach.widgets",
    "setup": "lmm_teach.widgets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
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
