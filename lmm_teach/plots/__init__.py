"""Bokeh figure builders for lmm_teach.

Every figure follows one pattern (house style: "plots never fit or simulate"):

* ``make_<name>_figure()`` builds the figure once and returns
  ``(figure, sources)``, a dict of named, initially empty ``ColumnDataSource``;
* ``<name>_data(...)`` is a pure function from results / DataFrames to a dict
  ``{source name: {column: values}}``;
* an update assigns each ``source.data`` once (:func:`update_sources`), so the
  browser receives one message per source.

The ``*_data`` functions need neither a browser nor a notebook and are what
the tests check.  This package imports bokeh but never ipywidgets.
"""

from __future__ import annotations

import numpy as np

from lmm_teach.plots.comparison import compare_data, make_compare_figure, short_method
from lmm_teach.plots.estimates import (
    fixed_data,
    generic_component,
    generic_term,
    make_fixed_figure,
    make_variance_figure,
    set_factors,
    variance_data,
)
from lmm_teach.plots.fit_lines import fit_data, make_fit_figure
from lmm_teach.plots.shrinkage import make_shrinkage_figure, shrinkage_data, shrinkage_kind
from lmm_teach.plots.spaghetti import make_spaghetti_figure, spaghetti_data
from lmm_teach.plots.theme import GREY, OKABE_ITO, WIDTH, group_colours, new_figure
from lmm_teach.plots.visit_means import make_visit_means_figure, visit_means_data

__all__ = [
    "OKABE_ITO", "GREY", "WIDTH", "new_figure", "group_colours", "update_sources",
    "make_spaghetti_figure", "spaghetti_data",
    "make_fit_figure", "fit_data",
    "make_shrinkage_figure", "shrinkage_data", "shrinkage_kind",
    "make_fixed_figure", "fixed_data", "make_variance_figure", "variance_data",
    "generic_term", "generic_component", "set_factors",
    "make_visit_means_figure", "visit_means_data",
    "make_compare_figure", "compare_data", "short_method",
]


def update_sources(sources: dict, data: dict) -> None:
    """Assign ``data[name]`` to ``sources[name].data``: one assignment per source.

    Every source named in ``data`` must exist; sources not named keep their data.
    Columns of text travel as numpy string arrays, which bokeh serialises as
    one block instead of string by string (half the cost for a few hundred
    points); the ``*_data`` functions keep returning plain lists.
    """
    for name, columns in data.items():
        sources[name].data = {k: _transport(v) for k, v in columns.items()}


def _transport(values):
    if isinstance(values, list) and values and all(type(v) is str for v in values):
        return np.asarray(values, dtype=str)
    return values
