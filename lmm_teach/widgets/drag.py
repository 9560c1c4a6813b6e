"""Drag a measurement: the learner's hand edits of the data, and the controls that make them.

Two pieces, shared by the Refit panel and the LMM tab of the Explorer:

* :class:`EditedData`: the data as given, and a copy of them that the learner
  edits (a measurement moved, one added).  The copy is made at the first edit,
  so the data as given are never changed, and "reset" returns the very
  object that was given.  It also reads what the browser sends after a drag:
  the points' columns (``row``, ``x``, ``y``) of a ``PointDrawTool``, which
  jupyter_bokeh hands to the kernel on release.
* :class:`BrowserPoints`: the draggable points' source as the kernel wrote
  it, and whether what the browser sends back is news (a drag) or an echo
  of the kernel's own write (see its docstring);
* :class:`DragMode`: the "Drag a measurement" switch of the LMM tab, with
  "Reset data", "tap adds a measurement to" a chosen patient, and a line that
  says what the last edit did.  It fills the draggable points of a figure
  built with :func:`lmm_teach.plots.make_fit_figure` (``draggable=True``) and
  hands each edit to the panel that owns it (which refits).

Everything a drag does is also a method (:meth:`DragMode.move`,
:meth:`DragMode.add`, :meth:`DragMode.reset`), so tests and lessons drive it
from Python.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping

import ipywidgets as widgets
import numpy as np
import pandas as pd

from lmm_teach.validate import DataError
from lmm_teach.widgets.base import escape

__all__ = ["EditedData", "BrowserPoints", "DragMode", "edit_code", "refit_like", "info_html"]


class EditedData:
    """Long data and the learner's hand-edited copy of them.

    Parameters
    ----------
    data : DataFrame
        The data as given (never modified).
    y, subject, time : str
        Column roles.
    visit : str, optional
        The visit label; a measurement added at time ``t`` gets the visit
        whose planned time is nearest (the RM-ANOVA then averages the two
        measurements of that visit, and says so).

    Attributes
    ----------
    given : DataFrame
        The data as given.
    data : DataFrame
        The current data: ``given`` itself until the first edit, then the
        edited copy (index 0, 1, ...: a measurement's row is its position).
    edits : int
        Edits since the data were given or reset (a drag that moves two
        points at once counts once).
    subject : str or None
        The subject of the latest edit.

    Examples
    --------
    >>> df = pd.DataFrame({"s": ["a", "a", "b"], "t": [0.0, 1.0, 0.0], "y": [1.0, 2.0, 3.0]})
    >>> e = EditedData(df, y="y", subject="s", time="t")
    >>> e.move(0, 5.0), e.add("b", 1.0, 4.0), e.edits
    ('a', 'b', 2)
    >>> df["y"].tolist(), e.data["y"].tolist()
    ([1.0, 2.0, 3.0], [5.0, 2.0, 3.0, 4.0])
    >>> e.reset(); e.data is df
    True
    """

    def __init__(self, data: pd.DataFrame, *, y: str, subject: str, time: str, visit: str | None = None):
        self.given = data
        self.y, self.subject_col, self.time, self.visit = y, subject, time, visit
        self._copy: pd.DataFrame | None = None
        self._undo: tuple | None = None
        self.edits = 0
        self.subject: str | None = None

    @property
    def data(self) -> pd.DataFrame:
        return self.given if self._copy is None else self._copy

    @property
    def changed(self) -> bool:
        """True once a measurement was edited (until :meth:`reset`)."""
        return self._copy is not None

    # ------------------------------------------------------------------ edits
    def move(self, row: int, value: float) -> str:
        """Set the outcome of measurement ``row`` (its position) to ``value``; the subject edited."""
        self._start_edit()
        return self._move(int(row), float(value))

    def add(self, subject, time: float, value: float) -> str:
        """Add a measurement of ``subject`` at ``time``; the subject edited."""
        self._start_edit()
        return self._add(subject, float(time), float(value))

    def apply(self, columns: Mapping, *, add_to=None) -> str | None:
        """Apply what the browser sent after a drag (or a tap that added a point).

        ``columns`` holds the points' ``row``, ``x`` and ``y``: a known row
        whose ``y`` changed is moved (its time stays: a drag also nudges a
        point sideways); a point without a row was tapped in and is added to
        ``add_to`` at its ``x``.  Returns the subject edited last, or None if
        nothing changed (a sideways nudge only).
        """
        rows = list(columns.get("row", []))
        xs = np.asarray(columns.get("x", []), float)
        ys = np.asarray(columns.get("y", []), float)
        n = len(self.data)
        moves, adds = [], []
        current = self.data[self.y].to_numpy(float)
        for k, row in enumerate(rows):
            i = _row_id(row)
            if k >= len(ys) or not np.isfinite(ys[k]):
                continue
            if i is None or not 0 <= i < n:
                if add_to is not None and k < len(xs) and np.isfinite(xs[k]):
                    adds.append((round(float(xs[k]), 2), float(ys[k])))
            elif abs(current[i] - ys[k]) > 1e-9 * max(1.0, abs(current[i])):
                moves.append((i, float(ys[k])))
        if not moves and not adds:
            return None
        self._start_edit()
        subject = None
        for i, value in moves:
            subject = self._move(i, value)
        for t, value in adds:
            subject = self._add(add_to, t, value)
        return subject

    def reset(self) -> None:
        """Back to the data as given (the very object)."""
        self._copy, self._undo = None, None
        self.edits, self.subject = 0, None

    def undo(self) -> None:
        """Take back the latest edit (one that could not be fitted): the data before it, the very object."""
        if self._undo is not None:
            self._copy, self.edits, self.subject = self._undo
            self._undo = None

    def n_measurements(self, subject) -> int:
        """Measurements (with an outcome) of one subject in the current data."""
        d = self.data
        mine = d[self.subject_col].astype(str).to_numpy() == str(subject)
        return int(np.isfinite(pd.to_numeric(d[self.y], errors="coerce").to_numpy(float)[mine]).sum())

    # --------------------------------------------------------------- private
    def _start_edit(self) -> None:
        # Every edit makes a new frame: data handed out earlier (a result shown
        # in the Explorer) never change under their fit, and undo is a reference.
        self._undo = (self._copy, self.edits, self.subject)
        if self._copy is None:
            copy = self.given.copy()
            copy.index = pd.RangeIndex(len(copy))
            # Floats: a dragged value is never a whole number (an int column would refuse it).
            copy[self.y] = pd.to_numeric(copy[self.y], errors="coerce").astype(float)
            copy[self.time] = copy[self.time].astype(float)
        else:
            copy = self._copy.copy()
        self._copy = copy
        self.edits += 1

    def _move(self, i: int, value: float) -> str:
        d = self._copy
        if not 0 <= i < len(d):
            raise DataError(f"there is no measurement in row {i}: the data have {len(d)} rows")
        d.iloc[i, d.columns.get_loc(self.y)] = value
        self.subject = str(d.iloc[i, d.columns.get_loc(self.subject_col)])
        return self.subject

    def _add(self, subject, t: float, value: float) -> str:
        d = self._copy
        mine = d[self.subject_col].astype(str).to_numpy() == str(subject)
        if not mine.any():
            raise DataError(f"there is no {self.subject_col} {subject!r} in the data: choose one of them")
        row = d.iloc[[int(np.flatnonzero(mine)[0])]].copy()   # its subject, arm, clinic
        row[self.time] = t
        row[self.y] = value
        if self.visit is not None and self.visit != self.time:
            planned = d.groupby(self.visit, sort=False, observed=True)[self.time].mean()
            row[self.visit] = planned.index[int(np.argmin(np.abs(planned.to_numpy(float) - t)))]
        row.index = pd.RangeIndex(len(d), len(d) + 1)
        self._copy = pd.concat([d, row])
        self.subject = str(row.iloc[0][self.subject_col])
        return self.subject


def _row_id(value) -> int | None:
    """A point's row id as the browser sent it (a number; "" or NaN for a tapped, new point)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if np.isfinite(f) and f == int(f) else None


class BrowserPoints:
    """A draggable points source: what the kernel wrote into it, and what the browser sends back.

    jupyter_bokeh 4.1 sends the kernel more than the learner's drags: its view
    re-sends every change that applying a kernel patch made in the browser, so
    each ``source.data = ...`` comes back (an echo), possibly after a newer
    write; and the kernel calls a source's callbacks twice for one message.
    Taken for edits, echoes undo and redo the learner's drag for ever (each
    refit writes the points again, which echo again).  So the points written
    recently are remembered by their coordinates, and what comes back is news
    only if its coordinates are new: a point the learner moved.

    Examples
    --------
    >>> from bokeh.models import ColumnDataSource
    >>> points = BrowserPoints(ColumnDataSource({"x": [], "y": []}))
    >>> points.write({"x": [0.0, 1.0], "y": [5.0, 6.0]})
    >>> points.news({"x": [0.0, 1.0], "y": [5.0, 6.0]}), points.news({"x": [0.0, 1.0], "y": [5.0, 9.0]})
    (False, True)
    """

    def __init__(self, source, *, remember: int = 8):
        self.source = source
        self.writing = False
        self.latest: dict | None = None
        self._written: deque = deque(maxlen=remember)
        self._seen = None

    def write(self, columns: dict) -> None:
        """Assign the points' columns (the source's callbacks see ``writing`` True)."""
        from lmm_teach.plots import update_sources

        self._written.append(_coordinates(columns))
        self.latest = columns
        self.writing = True
        try:
            update_sources({"points": self.source}, {"points": columns})
        finally:
            self.writing = False

    def news(self, new) -> bool:
        """Whether the browser's ``new`` columns are a change by the learner (not an echo, not seen).

        An echo of an older write, arriving after a newer one, has just put
        the older points into the kernel's source: the newer ones are written
        again (their own echo is then the latest, and ends it).
        """
        if self.writing or new is self._seen:
            return False
        self._seen = new
        coordinates = _coordinates(new)
        if coordinates not in self._written:
            return True
        if coordinates != self._written[-1]:
            self.restore()
        return False

    def restore(self) -> None:
        """Write the latest points again (the browser or an echo left other ones in the kernel's source)."""
        if self.latest is not None:
            self.write(self.latest)


def _coordinates(columns) -> bytes:
    return (np.asarray(columns.get("x", []), float).tobytes() + b"|"
            + np.asarray(columns.get("y", []), float).tobytes())


def edit_code(before: pd.DataFrame, after: pd.DataFrame, *, y: str, name: str = "data") -> str:
    """Python lines that turn ``before`` into ``after`` (outcomes changed, rows added at the end).

    For the Show code tab: the learner's hand edits, so that the code
    reproduces the numbers the Explorer shows.

    Examples
    --------
    >>> before = pd.DataFrame({"s": ["a", "b"], "y": [1.0, 2.0]})
    >>> after = pd.DataFrame({"s": ["a", "b", "b"], "y": [1.5, 2.0, 9.0]})
    >>> print(edit_code(before, after, y="y"))
    data.loc[0, 'y'] = 1.5
    data = pd.concat([data, pd.DataFrame([{'s': 'b', 'y': 9.0}])], ignore_index=True)
    """
    n = len(before)
    lines = []
    if not isinstance(before.index, pd.RangeIndex) or before.index.start != 0 or before.index.step != 1:
        lines.append(f"{name} = {name}.reset_index(drop=True)")
    old = pd.to_numeric(before[y], errors="coerce").to_numpy(float)
    new = after[y].to_numpy(float)[:n]
    for i in np.flatnonzero(~((old == new) | (np.isnan(old) & np.isnan(new)))):
        lines.append(f"{name}.loc[{int(i)}, {y!r}] = {float(new[i])!r}")
    if len(after) > n:
        records = [{k: _plain(v) for k, v in r.items()} for r in after.iloc[n:].to_dict(orient="records")]
        lines.append(f"{name} = pd.concat([{name}, pd.DataFrame({records!r})], ignore_index=True)")
    return "\n".join(lines)


def _plain(v):
    """A numpy scalar as the Python value it prints as."""
    return v.item() if isinstance(v, np.generic) else v


def refit_like(lmm, data: pd.DataFrame):
    """Fit the model of ``lmm`` (same columns and options) to other data, e.g. the edited copy."""
    from lmm_teach.lmm import fit_lmm

    c = lmm.columns
    return fit_lmm(data, y=c.y, subject=c.subject, time=c.time, visit=c.visit, between=c.between,
                   cluster=c.cluster, random_slope=lmm.random_slope, time_as=lmm.time_as, method=lmm.method,
                   df="kenward-roger" if lmm.ddf == "Kenward-Roger" else "satterthwaite")


class DragMode:
    """The "Drag a measurement" controls of a figure with draggable points.

    Parameters
    ----------
    figure : bokeh figure
        Built with draggable points (:func:`lmm_teach.plots.make_fit_figure`
        with ``draggable=True``).
    source : ColumnDataSource
        Its points (columns of :func:`lmm_teach.plots.refit.points_data`).
    tool : PointDrawTool
        Its drag tool.
    edit : callable
        ``edit(edited, subject) -> bool``: refit on ``edited.data`` and show
        it (called after every edit and reset; False when it could not).
    colour : str
        The edited subject's points (a colour no other line of the figure uses).

    Attributes
    ----------
    enabled : ipywidgets.ToggleButton
        The mode: on, the measurements are drawn as points to drag.
    reset_button, adding, add_to, info
        "Reset data", "tap adds a measurement to", the patient it goes to,
        what the latest edit did.
    edited : EditedData or None
        The data shown, with the edits.
    """

    def __init__(self, figure, source, tool, *, edit: Callable, colour: str = "#D55E00"):
        self.figure, self.source, self.tool = figure, source, tool
        self.colour = colour
        self.edit = edit
        self.edited: EditedData | None = None
        self.change = ""          # what the latest edit did, in words
        self.points_source = BrowserPoints(source)
        self._choices_for = None
        self.enabled = widgets.ToggleButton(
            value=False, description="Drag a measurement", icon="hand-paper-o",
            tooltip="Show the measurements as points: drag one up or down and let go, the model refits",
            layout=widgets.Layout(width="auto"))
        self.enabled.add_class("lmm-drag-mode")
        self.enabled.observe(lambda change: self._switch(), names="value")
        self.reset_button = widgets.Button(description="Reset data", icon="undo", disabled=True,
                                           tooltip="Restore the data as they were before any drag",
                                           layout=widgets.Layout(width="auto"))
        self.reset_button.add_class("lmm-drag-reset")
        self.reset_button.on_click(lambda button: self.reset())
        self.adding = widgets.Checkbox(value=False, description="tap adds a measurement to", indent=False,
                                       layout=widgets.Layout(width="auto"))
        self.adding.add_class("lmm-drag-adding")
        self.adding.observe(lambda change: setattr(self.tool, "add", bool(change["new"])), names="value")
        self.add_to = widgets.Dropdown(options=[], layout=widgets.Layout(width="210px"))
        self.add_to.add_class("lmm-drag-add-to")
        self.info = widgets.HTML()
        self.info.add_class("lmm-drag-info")
        self._extra = widgets.HBox([self.adding, self.add_to], layout=widgets.Layout(display="none"))
        self.widget = widgets.VBox([widgets.HBox([self.enabled, self.reset_button, self._extra],
                                                 layout=widgets.Layout(flex_flow="row wrap")), self.info])
        self.widget.add_class("lmm-drag")
        source.on_change("data", self._on_points)

    # ------------------------------------------------------------- the state
    @property
    def edits(self) -> int:
        return self.edited.edits if self.edited is not None else 0

    def highlight(self, data) -> str | None:
        """The subject to highlight when ``data`` are shown: the one edited last, if these are the edited data."""
        e = self.edited
        return e.subject if e is not None and e.changed and data is e.data else None

    def follow(self, data: pd.DataFrame, columns) -> bool:
        """The panel shows ``data``; new data (not the edited copy) drop the edits.  True if they did."""
        e = self.edited
        if e is not None and (data is e.data or data is e.given):
            return False
        dropped = self.edits
        self.edited = EditedData(data, y=columns.y, subject=columns.subject, time=columns.time,
                                 visit=columns.visit)
        self.change = ""
        self._choices_for = None
        self._after()
        return bool(dropped)

    # --------------------------------------------------------------- actions
    def move(self, row: int, value: float) -> bool:
        """Move measurement ``row`` (its position in the data) to ``value`` and refit."""
        return self._edited(lambda e: e.move(row, value))

    def add(self, subject, time: float, value: float) -> bool:
        """Add a measurement of ``subject`` at ``time`` and refit."""
        return self._edited(lambda e: e.add(subject, time, value))

    def reset(self) -> bool:
        """Restore the data as given and refit."""
        if self.edited is None:
            return True
        self.edited.reset()
        self.change = ""
        ok = self.edit(self.edited, None)
        self._after()
        return ok

    def write_points(self, columns: dict) -> None:
        """Assign the points' columns (what comes back from the browser as an echo is not an edit)."""
        self.points_source.write(columns)

    # ---------------------------------------------------------------- private
    def _edited(self, change: Callable) -> bool:
        e = self.edited
        if e is None:
            raise DataError("there are no data to edit yet")
        subject = change(e)
        if subject is None:
            return True
        ok = self.edit(e, subject)
        if not ok:
            e.undo()
        self._after()
        return ok

    def _after(self) -> None:
        self.reset_button.disabled = not (self.edited is not None and self.edited.changed)
        self._refresh_choices()

    def _refresh_choices(self) -> None:
        e = self.edited
        if e is None:
            return
        key = (id(e.given), len(e.data))   # a moved measurement changes no patient's count
        if key == self._choices_for:
            return
        self._choices_for = key
        counts = (e.data.dropna(subset=[e.y]).groupby(e.subject_col, sort=True, observed=True).size())
        options = [(f"{s} ({n} measurement{'s' if n != 1 else ''})", str(s)) for s, n in counts.items()]
        if list(self.add_to.options) != options:
            keep = self.add_to.value
            self.add_to.options = options
            values = [v for _, v in options]
            self.add_to.value = keep if keep in values else (values[0] if values else None)

    def _switch(self) -> None:
        on = bool(self.enabled.value)
        self._extra.layout.display = None if on else "none"
        bar = self.figure.toolbar
        bar.active_drag = self.tool if on else "auto"
        bar.active_tap = self.tool if on else None
        if not on:
            self.adding.value = False
            # Empty, not hidden: the y range follows the points that are drawn.
            self.write_points({c: [] for c in self.source.data})
        else:
            self._redraw_points()

    def _on_points(self, attr, old, new) -> None:
        """The browser sent the points: after a drag (or a tap that added one), or as an echo."""
        if not self.points_source.news(new) or self.edited is None:
            return
        add_to = self.add_to.value if self.adding.value else None
        try:
            subject = self.edited.apply(new, add_to=add_to)
        except DataError:
            subject = None
        if subject is None:
            self.points_source.restore()   # a sideways nudge only: put the points back
            return
        if not self.edit(self.edited, subject):
            self.edited.undo()
            self._redraw_points()
        self._after()

    def points(self, data, columns) -> dict | None:
        """The points' columns for ``data`` (column roles ``columns``); None while the mode is off."""
        from lmm_teach.plots.refit import points_data

        if not self.enabled.value:
            return None
        return points_data(data, y=columns.y, subject=columns.subject, time=columns.time,
                           highlight=self.highlight(data), colour=self.colour)

    def _redraw_points(self) -> None:
        e = self.edited
        if e is not None:
            from lmm_teach.validate import Columns

            columns = self.points(e.data, Columns(y=e.y, subject=e.subject_col, time=e.time))
            if columns is not None:
                self.write_points(columns)


def info_html(change: str, *, edits: int, lmm, refit_ms: float) -> str:
    """The line under the drag controls: what the latest edit did, and the fit's ICC and residual SD."""
    bits = [f"{edits} edit{'s' if edits != 1 else ''}"]
    if lmm.icc is not None and np.isfinite(lmm.icc):
        bits.append(f"ICC {lmm.icc:.2f}")
    bits += [f"residual SD {lmm.sigma:.2f}", f"refit {refit_ms:.0f} ms"]
    text = escape(" · ".join(bits))
    if change:
        text = escape(change) + "<br>" + text
    return f"<p style='margin:2px 0' data-refits='{edits}'>{text}</p>"
