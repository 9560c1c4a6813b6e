"""What every panel shares: display through its layout, a status area, batching.

A panel is a plain class that owns its widgets as attributes and keeps its
whole layout in ``self.layout`` (an ipywidgets container).  Displaying the
panel displays that layout; BokehJS is loaded first if this kernel has not
loaded it yet, so a lesson that forgets ``lmm_teach.setup()`` still works, and
the figures' bundles are brought up to date (:func:`before_display`), so the
views created now draw the data the panel holds, not the empty figures it
was built with.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import ipywidgets as widgets

from lmm_teach.widgets.notebook import before_display, ensure_bokehjs

__all__ = ["Panel", "StatusArea", "Batcher", "escape"]


def escape(text) -> str:
    """HTML-escape any value for display."""
    return html.escape(str(text), quote=True)


class Panel:
    """Base class: a panel shows ``self.layout`` and has a stable CSS class.

    Subclasses build ``self.layout`` in ``__init__`` and call
    ``self._finish_layout("lmm-<name>")``.
    """

    layout: widgets.Widget

    def _finish_layout(self, css_class: str) -> None:
        self.layout.add_class("lmm-panel")
        self.layout.add_class(css_class)

    def _repr_mimebundle_(self, **kwargs):
        ensure_bokehjs()
        # Before the display message: the bundle updates reach the front end's
        # models first, and its views are built from them.
        before_display(self.layout)
        return self.layout._repr_mimebundle_(**kwargs)


class StatusArea:
    """An HTML area (CSS class ``lmm-status``) that a screen reader announces.

    It shows either what a learner should know about the latest results
    (``show``), or why they could not be computed (``problem``).
    """

    def __init__(self) -> None:
        self.widget = widgets.HTML(value="")
        self.widget.add_class("lmm-status")
        self.kind = "empty"   # "empty", "ok", "notes" or "problem"
        self.text = ""        # the message as plain text, for tests and logs

    def clear(self) -> None:
        self._set("empty", "", "")

    def show(self, notes: Iterable[str] = (), *, title: str = "") -> None:
        """List teaching notes (plain text, escaped); nothing when there are none."""
        notes = [n for n in notes if n]
        if not notes:
            self._set("ok", "", "")
            return
        items = "".join(f"<li style='line-height:1.4'>{escape(n)}</li>" for n in notes)
        head = f"<b>{escape(title)}</b>" if title else ""
        self._set("notes", head + f"<ul style='margin:2px 0 2px 1em;padding:0'>{items}</ul>",
                  "\n".join(([title] if title else []) + notes))

    def problem(self, title: str, explanation: str, *, hint: str = "") -> None:
        """Explain why the latest change could not be shown (the last good results stay)."""
        body = f"<b>{escape(title)}</b><br>{escape(explanation)}"
        if hint:
            body += f"<br><i>{escape(hint)}</i>"
        self._set("problem", body, "\n".join(t for t in (title, explanation, hint) if t))

    def _set(self, kind: str, body: str, text: str) -> None:
        self.kind, self.text = kind, text
        colour = {"problem": "#D55E00", "notes": "#0072B2"}.get(kind)
        if not body:
            self.widget.value = ""
            return
        style = (f"border-left:4px solid {colour};padding:4px 8px;margin:4px 0;"
                 "background:var(--jp-layout-color2);color:var(--jp-content-font-color1);line-height:1.35")
        self.widget.value = (f"<div role='status' aria-live='polite' class='lmm-status-{kind}' "
                             f"style='{style}'>{body}</div>")


class Batcher:
    """Coalesce a burst of changes into one call.

    Observers call :meth:`changed`; outside a :meth:`hold` block the callbacks
    run at once, inside it they run once when the outermost block ends (if
    anything changed).  Callbacks run synchronously in the kernel, in order,
    and always read the current state, so the last state always wins.

    Examples
    --------
    >>> calls = []
    >>> b = Batcher()
    >>> b.on_change(lambda: calls.append(1))
    >>> with b.hold():
    ...     b.changed(); b.changed()
    >>> calls
    [1]
    """

    def __init__(self) -> None:
        self._depth = 0
        self._dirty = False
        self._callbacks: list[Callable[[], object]] = []

    @property
    def holding(self) -> bool:
        return self._depth > 0

    def on_change(self, callback: Callable[[], object]) -> None:
        self._callbacks.append(callback)

    def changed(self) -> None:
        if self._depth:
            self._dirty = True
            return
        self._fire()

    @contextmanager
    def hold(self):
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1
            if self._depth == 0 and self._dirty:
                self._dirty = False
                self._fire()

    def _fire(self) -> None:
        for cb in list(self._callbacks):
            cb()
