"""BokehJS in the notebook: load it once, inline, and embed figures as widgets.

BokehJS is loaded from the installed bokeh package (``bokeh.resources.INLINE``),
never from a CDN, so the panels work offline, in locked-down classrooms and in
CI.  jupyter_bokeh's ``BokehModel`` renders a figure as an ipywidget and syncs
later changes (``source.data = ...``) to the browser; it expects BokehJS to be
on the page already, which is what :func:`setup` does.

What a browser view of a figure shows
-------------------------------------
A ``BokehModel`` serialises its figure's whole document once, when it is
built (its ``render_bundle``); a browser view renders that bundle when it is
created.  Later changes travel as patches, each split over several comm
messages (header, metadata, content, buffers), that only views already on
the page apply (jupyter_bokeh 4.1, ``BokehView._consume_patch``).  Hence two
failures, both seen in JupyterLab:

* a panel that assigns ``source.data`` after wrapping its figures and before
  it is displayed (every panel built with data) shows the empty figures it
  started with: the patches went to no view;
* a view built while a patch is on its way (a cell that displays a panel and
  then updates it) starts reading in the middle of a patch; its reader stays
  out of step, silently, and that view applies no patch ever after.

The rule, kept here for every panel: :func:`embed` returns a
:class:`FigureWidget`, which records what the kernel changes in its figure
and sends patches only while views are on a page and none is being built:

* before a view can be built (a panel displayed: :func:`before_display`
  from ``Panel._repr_mimebundle_``; a figure widget displayed alone or put
  into a container: :meth:`FigureWidget.resync`), the bundle is
  re-serialised if the figure changed and no view is on a page, and patches
  are held;
* the front end reports each view it has built (ipywidgets'
  ``_view_count``, as Panel uses it for its ipywidgets); then the held
  changes are sent, as whole new values, and patches flow again.  The
  report needs an idle kernel; the bundle at display needs nothing.

What comes back from the browser
--------------------------------
jupyter_bokeh 4.1's view sends the kernel every change of its document,
including those that applying a kernel patch made (it holds them while it
applies the patch and sends them afterwards): each ``source.data = ...``
comes back as an echo, in full, possibly after a newer assignment, which it
would then overwrite in the kernel's model.  A source's data change in the
browser only through a tool (drag a point: :mod:`lmm_teach.widgets.drag`),
and only a source with a Python callback wants to hear of it, so
:meth:`FigureWidget._sync_model` drops the data messages of the other
sources unread (a slider's update is not decoded a second time).

One update, one message per figure
----------------------------------
An update assigns several sources of a figure (the LMM tab's fit: subjects,
band, population, ...).  Inside :func:`batched` a figure widget collects
them and sends one patch with every change when the block ends (the Bokeh
server does the same): the browser applies them together and draws the
figure once, not once per source, and fewer comm messages travel.

So nothing is re-serialised when a learner moves a slider, and the bundle
never changes under a view (a view whose bundle changes while it is being
built breaks: BokehJS 3.9 "configuration is missing").  The figures are
built once: updates change properties and data, never add models (a patch
can only refer to models the view knows).
"""

from __future__ import annotations

import threading
from contextlib import ExitStack, contextmanager

from bokeh.core.serialization import Serializer
from bokeh.document.events import ColumnDataChangedEvent, ModelChangedEvent
from bokeh.models import ColumnDataSource
from bokeh.protocol.messages.patch_doc import patch_doc
from jupyter_bokeh import BokehModel

__all__ = ["setup", "ensure_bokehjs", "embed", "in_notebook", "FigureWidget", "figures_in",
           "resync_figures", "before_display", "batched"]

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

    from lmm_teach.widgets.page import page_setup

    output_notebook(INLINE, hide_banner=True)
    page_setup()  # the panels' stylesheet and the sliders' accessible names
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


def embed(fig) -> FigureWidget:
    """Wrap a bokeh figure (or layout) as an ipywidget (a :class:`FigureWidget`).

    Later changes to the figure's models, e.g. ``source.data = ...``, are sent
    to the browser as patches; nothing is re-rendered.  The widget is hidden
    while all its figure's data sources are empty (an empty frame without
    axes tells a learner nothing) and appears with the first data.

    Examples
    --------
    >>> from bokeh.plotting import figure
    >>> fig = figure(width=200, height=150)
    >>> r = fig.scatter(x=[], y=[])
    >>> view = embed(fig)
    >>> view.layout.display
    'none'
    >>> r.data_source.data = {"x": [1, 2], "y": [3, 4]}
    >>> view.layout.display is None, view.stale
    (True, True)
    >>> view.resync(), view.stale
    (True, False)
    """
    return FigureWidget(fig)


def figures_in(widget) -> list[FigureWidget]:
    """The :class:`FigureWidget` s in a widget tree (through ``children`` of boxes and tabs)."""
    found, stack, seen = [], [widget], set()
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        if isinstance(w, FigureWidget):
            found.append(w)
        stack.extend(getattr(w, "children", None) or ())
    return found


def resync_figures(widget) -> int:
    """:meth:`FigureWidget.resync` every figure in a widget tree; how many were re-serialised."""
    return sum(f.resync() for f in figures_in(widget))


@contextmanager
def batched(widget):
    """Within the block, every figure in ``widget``'s tree sends its changes as one patch, at the end.

    Examples
    --------
    >>> from bokeh.plotting import figure
    >>> fig = figure(width=200, height=150)
    >>> r = fig.scatter(x=[], y=[])
    >>> view = embed(fig)
    >>> with batched(view):
    ...     r.data_source.data = {"x": [1], "y": [2]}
    ...     r.data_source.data = {"x": [1, 2], "y": [2, 3]}     # one message, with the latest data
    """
    with ExitStack() as stack:
        for view in figures_in(widget):
            stack.enter_context(view.batch())
        yield


def before_display(widget) -> int:
    """What a panel does before it is displayed: :meth:`FigureWidget.resync` its figures.

    Returns how many figures were re-serialised.
    """
    return resync_figures(widget)


class FigureWidget(BokehModel):
    """A ``jupyter_bokeh.BokehModel`` whose views show the figure as it is now.

    Attributes
    ----------
    stale : bool
        The kernel changed the figure since its bundle was serialised.
    n_views : int
        Views the front end reported (0 outside a notebook).
    holding : bool
        Patches are held: a view may be being built (see the module docstring).

    CSS class ``lmm-bokeh``.
    """

    def __init__(self, fig, **kwargs):
        # (model id, attribute) -> model, changed by the kernel since the bundle,
        # in the order of their latest change.
        self._changed: dict = {}
        self._holding = False
        self._batch: dict | None = None   # (model id, attr) -> model, changed inside batch()
        # A Monte Carlo study fills its charts from a worker thread while the
        # kernel's thread may handle a view report: a patch is several comm
        # messages, so the two senders must not interleave.
        self._lock = threading.RLock()
        # The figures are built once: their sources never change, only their data.
        self._sources = tuple(fig.select({"type": ColumnDataSource}))
        # _view_count=0 asks the front end to report its views (None: do not).
        super().__init__(fig, _view_count=0, **kwargs)
        self.observe(self._on_view_count, names="_view_count")
        self.add_class("lmm-bokeh")
        self._show_if_drawn()

    @property
    def stale(self) -> bool:
        return bool(self._changed)

    @property
    def n_views(self) -> int:
        return self._view_count or 0

    @property
    def holding(self) -> bool:
        return self._holding

    def resync(self) -> bool:
        """Get ready for a new view: call before the widget is displayed or put into a container.

        Re-serialises the figure if it changed and no view is on a page (the
        new bundle reaches the front end's model before the message that
        builds the view), and holds patches until the new view reports.
        Returns True if it re-serialised.
        """
        with self._lock:
            self._holding = True
            if not self._changed or self.n_views > 0:
                return False
            self.update_from_model(self._model)
            return True

    def update_from_model(self, model) -> None:
        super().update_from_model(model)
        self._changed.clear()

    def _document_patched(self, event) -> None:
        model, attr = getattr(event, "model", None), getattr(event, "attr", None)
        # A change made by a view (setter) is on its page already; an event
        # message (MessageSentEvent) is not state.
        if event.setter is self or model is None or attr is None:
            return
        key = (model.id, attr)
        with self._lock:
            self._changed.pop(key, None)
            self._changed[key] = model
            if self._batch is not None:
                self._batch.pop(key, None)
                self._batch[key] = model
            elif self.n_views > 0 and not self._holding:
                super()._document_patched(event)
        self._show_if_drawn()

    @contextmanager
    def batch(self):
        """Collect the changes made in the block; send them as one patch at its end (see :func:`batched`).

        Blocks nest: the end of an inner block sends what was collected so
        far (a panel can send its plots before its tables), the outer block
        goes on collecting.
        """
        with self._lock:
            outer = self._batch is not None
            if not outer:
                self._batch = {}
        try:
            yield self
        finally:
            with self._lock:
                changed = self._batch
                self._batch = {} if outer else None
                if changed and self.n_views > 0 and not self._holding:
                    self._send_patch(changed)

    def _send_patch(self, changed: dict) -> None:
        """One PATCH-DOC message with the current value of every changed property.

        As jupyter_bokeh sends one, except that arrays travel inside the
        message (base64, as in the figure's bundle) rather than as binary
        buffers: jupyter_bokeh sends each buffer as two more comm messages, and
        an update of the LMM tab has some forty small arrays.
        """
        doc = self._document
        events = [self._event(model, attr) for (_, attr), model in changed.items()]
        serializer = Serializer(references=doc.models.synced_references, deferred=False)
        msg = patch_doc(patch_doc.create_header(), {}, {"events": serializer.encode(events)})
        doc.models.flush_synced(lambda model: not serializer.has_ref(model))
        self.send({"msg": "patch", "payload": msg.header_json})
        self.send({"msg": "patch", "payload": msg.metadata_json})
        self.send({"msg": "patch", "payload": msg.content_json})

    def _event(self, model, attr):
        if attr == "data" and isinstance(model, ColumnDataSource):
            return ColumnDataChangedEvent(self._document, model, "data")
        return ModelChangedEvent(self._document, model, attr, getattr(model, attr))

    def _sync_model(self, _model, content: dict, _buffers) -> None:
        """A change from the browser: dropped unread when it is an echo of a source's data (module docstring)."""
        if content.get("kind") == "ModelChanged" and content.get("attr") == "data":
            ref = content.get("model")
            model = self._document.get_model_by_id(ref.get("id")) if isinstance(ref, dict) else None
            if isinstance(model, ColumnDataSource) and not model._callbacks.get("data"):
                return
        super()._sync_model(_model, content, _buffers)

    def _on_view_count(self, change) -> None:
        if (change["new"] or 0) > (change["old"] or 0):
            with self._lock:
                self._holding = False
                self._send_changes()

    def _send_changes(self) -> int:
        """Patch every property changed since the bundle, with its current value."""
        with self._lock:
            for (_, attr), model in list(self._changed.items()):
                super()._document_patched(self._event(model, attr))
            return len(self._changed)

    def _repr_mimebundle_(self, **kwargs):
        ensure_bokehjs()
        before_display(self)
        return super()._repr_mimebundle_(**kwargs)

    def _show_if_drawn(self) -> None:
        empty = bool(self._sources) and not any(_n_rows(s.data) for s in self._sources)
        display = "none" if empty else None
        if self.layout.display != display:
            self.layout.display = display


def _n_rows(data) -> int:
    return max((len(v) for v in data.values()), default=0)
