"""The ipywidgets panels of lmm_teach and the Explorer app that joins them.

``lmm_teach.Explorer()`` shows the whole app; every panel also works alone in
a lesson: ``DesignPanel()``, ``DataPanel(data, y=..., subject=..., time=...)``,
``LMMPanel(fit, data=...)``, ``AnovaPanel(anova, data=...)``,
``ComparePanel(analysis)``.  BokehJS is loaded inline (no CDN) by
:func:`setup` (``%load_ext lmm_teach``), and by the first panel this kernel
displays; an explicit ``setup()`` loads it again, for a page the browser
reloaded while the kernel kept running.

Panels
------
A panel is a plain class: it owns its widgets as attributes, keeps its whole
layout in ``panel.layout`` (with a stable CSS class ``lmm-<name>`` for browser
tests) and displays itself through that layout.  A result panel has

* ``prepare(...) -> show``: compute everything (pure; may raise), return a
  function that only assigns ``source.data`` and HTML values;
* ``update(...)``: ``prepare(...)()``;
* ``result``: what it shows now.

Figures go into a layout through :func:`embed` (a
:class:`~lmm_teach.widgets.notebook.FigureWidget`), never a bare
``jupyter_bokeh.BokehModel``: a bare one shows the figure as it was when it was
wrapped, so a panel filled before display draws empty plots in the browser.
Assign ``source.data`` whenever you like; a figure widget put into a container
after the panel was displayed needs ``view.resync()`` just before (see
``lmm_teach/widgets/notebook.py``).

The LMM panel's "Drag a measurement" (``widgets/drag.py``) edits a copy of
the data; in the Explorer (``explorer.drag``) the edited data become
``explorer.result`` (``result.edits`` > 0, ``result.base`` the unedited
result), so every tab follows them until "Reset data" or a Design change.

The Explorer prepares every panel before it shows any, so a failure keeps the
last good plots; :class:`~lmm_teach.widgets.explorer.Explorer.refresh` never
raises and explains problems in the status area (class ``lmm-status``).

Adding a tab to the Explorer (Diagnostics, Covariance, Monte Carlo, Your own data, Show code)
-----------------------------------------------------------------------------------------------
After its four result tabs the Explorer builds the tabs listed in
``lmm_teach.widgets.explorer.EXTENSION_TABS``, pairs of a title and a factory::

    "Diagnostics"    lmm_teach/widgets/diagnostics_panel.py   explorer_tab
    "Covariance"     lmm_teach/widgets/covariance_panel.py    explorer_tab
    "Monte Carlo"    lmm_teach/widgets/montecarlo_panel.py    explorer_tab
    "Your own data"  lmm_teach/widgets/data_panel.py          explorer_tab
    "Show code"      lmm_teach/widgets/code_panel.py          explorer_tab

A new tab is a module with a function ``explorer_tab(explorer)``, imported by
``explorer.py`` and listed there; the function returns a panel object (or None:
no tab) with

* ``layout``: the ipywidget shown in the tab (give it ``add_class("lmm-<name>")``);
* optionally ``explorer_updated(result)``: called after every successful update
  with the :class:`~lmm_teach.widgets.explorer.ExplorerResult` (``design``,
  ``seed``, ``data``, ``columns``, ``analysis``, ``lmm``, ``anova``,
  ``comparison``, ``shrinkage``, ``truth``, ``simulation``).  Keep it cheap
  (it runs on every slider release): mark yourself stale rather than
  recompute.  It also runs after every drag of a measurement
  (``result.edits`` > 0): then ``result.lmm`` is ready, but ``analysis``,
  ``anova`` and ``comparison`` are computed when first read, so read them
  only when your tab is shown (as Show code does).

What the tab may use on ``explorer``: ``explorer.design`` (current Design;
``ValueError`` when the controls describe none), ``explorer.seed``,
``explorer.result``, ``explorer.controls`` (field name -> widget),
``explorer.hold()`` (batch control changes into one update),
``explorer.design_panel.set_design(design)``, ``explorer.apply_preset(name)``,
and ``explorer.show_data(data, y=..., subject=..., time=..., visit=...,
between=..., cluster=..., random_slope=...)``, which analyses a learner's
own data in the Data, LMM, ANOVA and Compare tabs (the status explains a
``DataError``).  The tab's panel should also work alone (without an
Explorer).  An exception in ``explorer_tab`` or ``explorer_updated`` never
breaks the app: it is recorded in ``explorer.extension_errors``.

The panel for a learner's own data lives in ``data_panel.py``: name its class
``OwnDataPanel`` (``DataPanel`` is the spaghetti plot, in ``data_view.py``).
"""

from __future__ import annotations

from lmm_teach.widgets.anova_panel import AnovaPanel
from lmm_teach.widgets.compare_panel import ComparePanel
from lmm_teach.widgets.data_view import DataPanel
from lmm_teach.widgets.design_panel import DesignPanel
from lmm_teach.widgets.explorer import EXTENSION_TABS, Explorer, ExplorerResult
from lmm_teach.widgets.lmm_panel import LMMPanel
from lmm_teach.widgets.notebook import embed, setup

__all__ = [
    "Explorer", "ExplorerResult", "EXTENSION_TABS", "setup", "embed",
    "DesignPanel", "DataPanel", "LMMPanel", "AnovaPanel", "ComparePanel",
]
