"""BokehJS in the notebook: load it once, inline, and embed figures as widgets.

BokehJS is loaded from the installed bokeh package (``bokeh.resources.INLINE``),
never from a CDN, so the panels work offline, in locked-down classrooms and in
CI.  jupyter_bokeh's ``BokehModel`` renders a figure as an ipywidget and syncs
later changes (``source.data = ...``) to the browser; it expects BokehJS to be
on the page already, which is what :func:`setup` does.
"""

from __future__ import annotations

__all__ = ["setup", "ensure_bokehjs", "embed", "in_notebook"]

# Whether this kernel has sent BokehJS to a front end.  This is the one piece
# of module state in the widget layer, on purpose: it is a per-kernel fact
# (about 4 MB of JavaScript in the notebook's output) that every panel checks
# before it displays itself.
_LOADED = {"bokehjs": False}


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where display messages reach a front end)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _load() -> None:
    from bokeh.io import output_notebook
    from bokeh.resources import INLINE

    output_notebook(INLINE, hide_banner=True)
    _LOADED["bokehjs"] = True


def setup() -> bool:
    """Load BokehJS (inline, no CDN) into this notebook page.

    Put it at the top of a lesson (or ``%load_ext lmm_teach``).  Panels load
    BokehJS themselves the first time this kernel displays one, so a lesson
    that forgets it still works; calling ``setup()`` explicitly loads again,
    which is what a page needs after the browser reloaded it while the kernel
    kept running (the kernel remembers, the new page does not).  BokehJS
    itself skips a second load in the same page.  Outside a notebook it does
    nothing.

    Returns
    -------
    bool
        True if BokehJS was sent to the front end.

    Examples
    --------
    >>> import lmm_teach
    >>> lmm_teach.setup()   # outside a notebook: nothing to do
    False
    """
    if not in_notebook():
        return False
    _load()
    return True


def ensure_bokehjs() -> bool:
    """Load BokehJS unless this kernel already did (what panels call when displayed).

    Returns True if it was sent now.
    """
    if _LOADED["bokehjs"] or not in_notebook():
        return False
    _load()
    return True


def embed(fig):
    """Wrap a bokeh figure (or layout) as an ipywidget (``jupyter_bokeh.BokehModel``).

    Later changes to the figure's models, e.g. ``source.data = ...``, are sent
    to the browser as patches; nothing is re-rendered.
    """
    from jupyter_bokeh import BokehModel

    model = BokehModel(fig)
    model.add_class("lmm-bokeh")
    return model
