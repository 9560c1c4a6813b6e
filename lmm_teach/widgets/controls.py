"""One control per :class:`~lmm_teach.design.Design` field, built from ``design.FIELDS``.

Labels, tooltips, units and ranges come from the field table the simulation
module owns, so the panel, the CLI and the docs use the same words.  Every
control updates on release (``continuous_update=False``) and carries its
description as a tooltip (the ``title`` attribute a screen reader reads).
"""

from __future__ import annotations

import html
import math

import ipywidgets as widgets

from lmm_teach.design import FieldInfo

__all__ = ["make_control", "control_row", "visible_label", "set_control", "control_value", "format_times",
           "parse_times", "GROUP_TITLES", "Section", "DEPENDS", "enabled"]

#: Section headings of the Design panel, in order, in words a learner knows.
GROUP_TITLES = {
    "Study": "Patients and visits",
    "Fixed effects": "Average course and treatment",
    "Random effects": "How patients differ",
    "Clinics": "Clinics",
    "Missing data": "Missing visits and dropout",
}

#: Controls that mean nothing while another is off: field -> (the switch, when it is on).
#: The Design panel disables them then (the arm sliders while "Two-arm trial" is unticked).
DEPENDS = {
    "arm_effect": ("arms", lambda v: bool(v["arms"])),
    "arm_slope_effect": ("arms", lambda v: bool(v["arms"])),
    "allocation": ("arms", lambda v: bool(v["arms"])),
    "sd_clinic": ("n_clinics", lambda v: v["n_clinics"] > 0),
    "corr_intercept_slope": ("sd_slope", lambda v: v["sd_slope"] > 0),
    "mnar_driver": ("mnar_dropout", lambda v: v["mnar_dropout"] > 0),
    "dropout_strength": ("mar_dropout", lambda v: v["mar_dropout"] > 0 or v["mnar_dropout"] > 0),
}


def enabled(name: str, values: dict) -> bool:
    """Whether the control of field ``name`` has an effect, given all control values.

    Examples
    --------
    >>> enabled("arm_effect", {"arms": False}), enabled("arm_effect", {"arms": True})
    (False, True)
    """
    rule = DEPENDS.get(name)
    if rule is None:
        return True
    try:
        return bool(rule[1](values))
    except (KeyError, TypeError):  # a value being typed: leave the control usable
        return True


# Labels sit above their control, so that every slider gets the full width
# (a label column wide enough for "Dropout driven by the unseen (MNAR)" would
# leave a slider a few pixels long).  The control keeps its own ``description``
# (ipywidgets renders it as a <label>) at zero width: visually hidden, it is
# the control's accessible name (a slider's handle is tied to it by
# aria-labelledby, see lmm_teach/widgets/page.py); the visible label is
# aria-hidden, so that a screen reader reads each name once.
_HIDDEN_LABEL = {"description_width": "0px"}
_WIDTH = "300px"


def _unit(info: FieldInfo) -> str:
    """The unit, unless the label already says it ("Number of patients": patients)."""
    unit = info.unit
    return "" if not unit or unit.rstrip("s").lower() in info.label.lower() else unit


def _description(info: FieldInfo) -> str:
    """What a screen reader announces: the label and the unit."""
    unit = _unit(info)
    return f"{info.label} ({unit})" if unit else info.label


def visible_label(info: FieldInfo) -> widgets.HTML:
    """The label shown above a control, with its unit in grey."""
    unit = _unit(info)
    tail = (f" <span style='color:var(--jp-content-font-color2);font-size:11px'>({escape(unit)})</span>"
            if unit else "")
    w = widgets.HTML(f"<span aria-hidden='true' style='font-size:12px' title='{escape(_tooltip(info))}'>"
                     f"{escape(info.label)}{tail}</span>",
                     layout=widgets.Layout(margin="4px 0 0 4px", min_height="18px", height="auto"))
    w.add_class("lmm-label")
    return w


def control_row(info: FieldInfo, control: widgets.Widget) -> widgets.Widget:
    """A control with its visible label above it (a check box carries its own label)."""
    if info.kind == "bool":
        return control
    return widgets.VBox([visible_label(info), control])


class Section:
    """A titled group of controls that opens and closes (a toggle button above its body).

    Parameters
    ----------
    title : str
        The heading, in words a learner knows.
    children : list of widgets
    opened : bool
        Whether the body shows at first.
    key : str
        Gives the CSS class ``lmm-design-group-<key>`` of the whole section.

    Attributes
    ----------
    toggle : ipywidgets.ToggleButton
        Pressed while open (a screen reader announces it as pressed or not).
    body : ipywidgets.VBox
    widget : ipywidgets.VBox
        Toggle and body.
    """

    def __init__(self, title: str, children, *, opened: bool = True, key: str = ""):
        self.title = title
        self.toggle = widgets.ToggleButton(value=bool(opened), description=title,
                                           tooltip=f"Show or hide: {title}",
                                           layout=widgets.Layout(width="auto", margin="6px 0 2px 0"))
        self.toggle.add_class("lmm-group-toggle")
        self.body = widgets.VBox(list(children))
        self.body.add_class("lmm-group-body")
        self.widget = widgets.VBox([self.toggle, self.body])
        self.widget.add_class("lmm-group")
        if key:
            self.widget.add_class(f"lmm-design-group-{key}")
        self.toggle.observe(lambda change: self._show(), names="value")
        self._show()

    @property
    def opened(self) -> bool:
        return bool(self.toggle.value)

    @opened.setter
    def opened(self, value: bool) -> None:
        self.toggle.value = bool(value)

    def _show(self) -> None:
        self.toggle.icon = "chevron-down" if self.opened else "chevron-right"
        self.body.layout.display = None if self.opened else "none"


def escape(text: str) -> str:
    return html.escape(str(text), quote=True)


def _tooltip(info: FieldInfo) -> str:
    text = info.description[:1].upper() + info.description[1:]
    unit = f" Unit: {info.unit}." if info.unit else ""
    return f"{text}.{unit} [{info.name}]"


def _decimals(step: float | None) -> int:
    if not step or step >= 1:
        return 0
    return max(0, -int(math.floor(math.log10(step) + 1e-9)))


def format_times(times) -> str:
    """``(0.0, 1.0, 2.5)`` -> ``"0, 1, 2.5"``."""
    return ", ".join(f"{float(t):g}" for t in times)


def parse_times(text: str) -> tuple[float, ...]:
    """``"0, 1, 2.5"`` (commas, semicolons or spaces) -> ``(0.0, 1.0, 2.5)``.

    Raises
    ------
    ValueError
        With a message for the learner when an entry is not a number.

    Examples
    --------
    >>> parse_times("0, 1; 2 4")
    (0.0, 1.0, 2.0, 4.0)
    """
    parts = [p for p in str(text).replace(";", " ").replace(",", " ").split() if p]
    out = []
    for p in parts:
        try:
            out.append(float(p))
        except ValueError:
            raise ValueError(f"visit times: {p!r} is not a number; write the times as numbers "
                             "separated by commas, e.g. 0, 1, 2, 4, 8") from None
    return tuple(out)


def make_control(info: FieldInfo, value) -> widgets.Widget:
    """A widget for one Design field, showing ``value``."""
    common = {"description": _description(info), "tooltip": _tooltip(info), "style": _HIDDEN_LABEL,
              "layout": widgets.Layout(width=_WIDTH)}
    kind = info.kind
    if kind == "int":
        w = widgets.IntSlider(min=int(info.min), max=int(info.max), step=int(info.step or 1),
                              continuous_update=False, **common)
    elif kind == "float":
        d = _decimals(info.step)
        w = widgets.FloatSlider(min=float(info.min), max=float(info.max), step=float(info.step or 0.01),
                                readout_format=f".{d}f", continuous_update=False, **common)
    elif kind == "bool":
        common["style"] = {"description_width": "initial"}  # a check box shows its own label
        w = widgets.Checkbox(indent=False, **common)
    elif kind == "choice":
        w = widgets.Dropdown(options=list(info.choices), **common)
    elif kind == "times":
        w = widgets.Text(continuous_update=False, placeholder="e.g. 0, 1, 2, 4, 8", **common)
    else:  # pragma: no cover - FIELDS only uses the kinds above
        raise ValueError(f"unknown control kind {kind!r} for {info.name}")
    w.add_class("lmm-control")
    w.add_class(f"lmm-control-{info.name.replace('_', '-')}")
    set_control(w, info, value)
    return w


def set_control(w: widgets.Widget, info: FieldInfo, value) -> None:
    """Show ``value`` in a control; a slider's range widens if the value lies outside it
    (``Explorer(design=Design(n_subjects=1000))`` must not be clipped silently)."""
    if info.kind == "times":
        w.value = format_times(value)
        return
    if info.kind in ("int", "float"):
        value = int(value) if info.kind == "int" else float(value)
        if value > w.max:
            w.max = value
        if value < w.min:
            w.min = value
    w.value = value


def control_value(w: widgets.Widget, info: FieldInfo):
    """The Design value a control holds (visit times parsed)."""
    if info.kind == "times":
        return parse_times(w.value)
    return w.value
