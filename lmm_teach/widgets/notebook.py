"""BokehJS in the notebook: load it once, inline, and embed figures as widgets.

BokehJS is loaded from the installed bokeh package (``bokeh.resources.INLINE``),
never from a CDN, so the panels work offline, in locked-down classrooms and in
CI.  jupyter_bokeh's ``BokehModel`` renders a figure as an ipywidget and syncs
later changes (``source.data = ...``) to the browser; it expects BokehJS to be
on the page already, which is what :func:`setup` does.
"""

from __future__ import annotations

__all__ = ["setup", "embed", "in_notebook"]

# Whether BokehJS has been sent to the front end by this kernel.  This is the
# one piece of module state in the widget layer, on purpose: loading BokehJS is
# a per-kernel fact (about 1 MB of JavaScript in the notebook's output) that
# every panel must be able to check before it displays itself.
_LOADED = {"bokehjs": False}


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where display messages reach a front end)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def setup(*, force: bool = False) -> bool:
    """Load BokehJS (inline, no CDN) into this notebook, once per kernel.

    Every panel calls this when it is displayed, so a lesson that forgets it
    still works; ``%load_ext lmm_teach`` calls it too.  Outside a notebook it
    does nothing.

    Parameters
    ----------
    force : bool
        Load again even if this kernel already did (e.g. after reloading the
        browser page, which forgets the scripts it had).

    Returns
    -------
    bool
        True if BokehJS was sent to the front end by this call.

    Examples
    --------
    >>> import lmm_teach
    >>> lmm_teach.setup()   # outside a notebook: nothing to do
    False
    """
    if _LOADED["bokehjs"] and not force:
        return False
    if not in_notebook():
        return False
    from bokeh.io import output_notebook
    from bokeh.resources import INLINE

    output_notebook(INLINE, hide_banner=True)
    _LOADED["bokehjs"] = True
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
