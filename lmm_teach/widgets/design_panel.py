"""The Design panel: a control for every Design knob, presets, a seed, "new sample"."""

from __future__ import annotations

import ipywidgets as widgets

from lmm_teach.design import FIELDS, PRESETS, Design
from lmm_teach.widgets.base import Batcher, Panel, StatusArea
from lmm_teach.widgets.controls import (
    DEPENDS,
    GROUP_TITLES,
    Section,
    control_row,
    control_value,
    enabled,
    make_control,
    set_control,
)

__all__ = ["DesignPanel"]

_CUSTOM = "(your own design)"
_LESSON = "This lesson's controls"
_WIDTH = "300px"


def _group_key(group: str) -> str:
    return group.lower().replace(" ", "-")


def _focus(focus) -> tuple[list[str], set[str]]:
    """Split ``focus`` into field names (in the order given) and group names; unknown names raise."""
    if focus is None:
        return [], set()
    if isinstance(focus, str):
        focus = [focus]
    fields, groups = [], set()
    by_title = {title.lower(): group for group, title in GROUP_TITLES.items()}
    for name in focus:
        if name in FIELDS:
            fields.append(name)
        elif name == "Sweep":  # the sweep's own section, closed unless a lesson asks for it
            groups.add(name)
        elif name in GROUP_TITLES or str(name).lower() in by_title:
            groups.add(name if name in GROUP_TITLES else by_title[str(name).lower()])
        else:
            raise ValueError(f"focus: {name!r} is neither a control ({', '.join(FIELDS)}) nor a group "
                             f"({', '.join(GROUP_TITLES)}, Sweep)")
    return fields, groups


class DesignPanel(Panel):
    """Controls for a simulated study, usable alone or inside the Explorer.

    Parameters
    ----------
    design : Design, optional
        The design shown at start (``Design()`` by default).
    seed : int
        The random seed shown at start.
    random_slope : bool, optional
        Whether the LMM fitted to the data gets a random slope per patient;
        by default, when the design has one (``sd_slope > 0``).
    show_errors : bool
        Explain an invalid design in the panel's own status area (the
        Explorer explains in its status instead).
    focus : list of str, optional
        The controls a lesson teaches: Design field names (shown first, in a
        section "This lesson's controls") and/or group names (``"Missing data"``
        or its heading): those sections are open, the others closed, one click
        away.  Without it, the first section ("Patients and visits") is open.
    limits : lmm_teach.widgets.app.AppLimits, optional
        Caps for a shared server: the patients slider ends at
        ``limits.max_subjects``, and a design beyond the limits is invalid
        (explained like any other invalid design).

    Attributes
    ----------
    controls : dict
        Design field name -> its widget (``controls["n_subjects"].value = 60``).
    seed : ipywidgets.IntText
        The random seed; the same seed and design give the same data.
    new_sample : ipywidgets.Button
        Draws a new sample (the next seed).
    preset : ipywidgets.Dropdown
        Named classroom designs (:data:`lmm_teach.design.PRESETS`).
    random_slope : ipywidgets.Checkbox
        A model option, not a Design field: fit ``(time | subject)``.
    sweep : SweepControl
        A Play control that moves one knob step by step (``sweep.play``).
    sections : dict
        Group name (``"Study"``, ..., ``"Model"``, ``"Sweep"``, and ``"Lesson"`` with
        ``focus``) -> its :class:`~lmm_teach.widgets.controls.Section`
        (``sections["Clinics"].opened = True``).
    batcher : Batcher
        ``panel.on_change(callback)`` runs the callback once per change, or once
        per ``with panel.hold():`` block.

    Examples
    --------
    >>> panel = DesignPanel()
    >>> panel.controls["n_subjects"].value = 60
    >>> panel.design.n_subjects
    60
    """

    def __init__(self, design: Design | None = None, *, seed: int = 1, random_slope: bool | None = None,
                 show_errors: bool = True, focus=None, limits=None):
        design = Design() if design is None else design
        self.show_errors = show_errors
        self.limits = limits
        self.batcher = Batcher()
        self.status = StatusArea()
        self.controls: dict[str, widgets.Widget] = {
            name: make_control(info, getattr(design, name)) for name, info in FIELDS.items()
        }
        self.seed = widgets.BoundedIntText(value=int(seed), min=0, max=2**31 - 1, description="Seed",
                                           tooltip="Random seed: the same seed and design give the same data",
                                           style={"description_width": "initial"},
                                           layout=widgets.Layout(width="160px"))
        self.seed.add_class("lmm-seed")
        self.new_sample = widgets.Button(description="New sample", icon="refresh",
                                         tooltip="Draw new patients from the same design (next seed)")
        self.new_sample.add_class("lmm-new-sample")
        self.preset = widgets.Dropdown(options=[_CUSTOM, *PRESETS], value=_CUSTOM, description="Preset",
                                       tooltip="Start from a classroom design",
                                       style={"description_width": "initial"},
                                       layout=widgets.Layout(width=_WIDTH))
        self.preset.add_class("lmm-preset")
        self.random_slope = widgets.Checkbox(
            value=bool(design.sd_slope > 0) if random_slope is None else bool(random_slope),
            description="LMM: give each patient its own slope", indent=False,
            tooltip="Fit y ~ time + (time | patient) instead of (1 | patient) [random_slope]",
            layout=widgets.Layout(width=_WIDTH))
        self.random_slope.add_class("lmm-random-slope")
        if limits is not None:
            n = self.controls["n_subjects"]
            n.max = max(limits.max_subjects, n.min)
        for w in self.controls.values():
            w.observe(self._on_control, names="value")
        self.seed.observe(lambda change: self.batcher.changed(), names="value")
        self.random_slope.observe(lambda change: self.batcher.changed(), names="value")
        self.preset.observe(self._on_preset, names="value")
        self.new_sample.on_click(lambda button: self.next_sample())
        self._sync_preset(design)

        def row(name):
            return control_row(FIELDS[name], self.controls[name])

        focus_fields, focus_groups = _focus(focus)
        self.sections: dict[str, Section] = {}
        if focus_fields:
            self.sections["Lesson"] = Section(_LESSON, [row(n) for n in focus_fields], opened=True, key="lesson")
        default_open = not focus_fields and not focus_groups
        for group, title in GROUP_TITLES.items():
            members = [row(n) for n, info in FIELDS.items() if info.group == group and n not in focus_fields]
            if members:
                opened = group in focus_groups or (default_open and group == "Study")
                self.sections[group] = Section(title, members, opened=opened, key=_group_key(group))
        known = set(GROUP_TITLES)
        rest = [row(n) for n, info in FIELDS.items() if info.group not in known and n not in focus_fields]
        if rest:  # a field added to Design later still gets a control
            self.sections["More"] = Section("More", rest, opened=False, key="more")
        self.sections["Model"] = Section("Model fitted", [self.random_slope], opened=True, key="model")
        from lmm_teach.widgets.sweep import SweepControl

        self.sweep = SweepControl(self)
        self.sections["Sweep"] = Section("Animate a sweep", [self.sweep.layout], opened="Sweep" in focus_groups,
                                         key="sweep")
        self.layout = widgets.VBox(
            [self.preset, widgets.HBox([self.seed, self.new_sample]), self.status.widget,
             *(section.widget for section in self.sections.values())],
            layout=widgets.Layout(width="320px"),
        )
        self._sync_enabled()
        self._finish_layout("lmm-design")

    # ------------------------------------------------------------------ state
    @property
    def design(self) -> Design:
        """The Design the controls describe (raises ``ValueError`` when they describe none)."""
        values = {name: control_value(w, FIELDS[name]) for name, w in self.controls.items()}
        design = Design(**values)
        if self.limits is not None:
            self.limits.check(design)
        return design

    def values(self) -> dict:
        """The raw control values, by field name (visit times as shown)."""
        return {name: w.value for name, w in self.controls.items()}

    def on_change(self, callback) -> None:
        """Call ``callback()`` after each change (once per :meth:`hold` block)."""
        self.batcher.on_change(callback)

    def hold(self):
        """Context manager: changes inside it cause one callback at the end."""
        return self.batcher.hold()

    def set_design(self, design: Design, *, random_slope: bool | None = None) -> None:
        """Show a design in the controls (one change for the whole design)."""
        with self.hold():
            for name, w in self.controls.items():
                set_control(w, FIELDS[name], getattr(design, name))
            if random_slope is not None:
                self.random_slope.value = bool(random_slope)
            self._check()
            self._sync_enabled()

    def apply_preset(self, name: str) -> None:
        """Load a preset design; the LMM gets a random slope when the preset has one."""
        design = PRESETS[name]
        with self.hold():
            self.set_design(design, random_slope=design.sd_slope > 0)
            self.preset.value = name

    def next_sample(self) -> None:
        """A new sample from the same design: the next seed."""
        self.seed.value = (self.seed.value + 1) % (self.seed.max + 1)

    # -------------------------------------------------------------- observers
    def _on_control(self, change) -> None:
        if not self.batcher.holding:
            self._check()
        self._sync_enabled()
        self.batcher.changed()

    def _sync_enabled(self) -> None:
        """Disable the controls that have no effect now (the arm sliders of a one-arm study)."""
        values = self.values()
        for name in DEPENDS:
            if name in self.controls:
                self.controls[name].disabled = not enabled(name, values)

    def _check(self) -> None:
        """Name the preset the controls equal, and explain an invalid design."""
        try:
            design = self.design
        except ValueError as exc:
            self._sync_preset(None)
            if self.show_errors:
                self.status.problem("This design cannot be simulated", str(exc),
                                    hint="Change the setting named above.")
            return
        self._sync_preset(design)
        if self.status.kind == "problem":
            self.status.clear()

    def _on_preset(self, change) -> None:
        if change["new"] in PRESETS:
            self.apply_preset(change["new"])

    def _sync_preset(self, design: Design | None) -> None:
        """Show the preset's name while the controls equal it, else "your own design"."""
        name = next((k for k, d in PRESETS.items() if d == design), _CUSTOM)
        if self.preset.value == name:
            return
        # Silently: showing the name must not apply the preset again.
        self.preset.unobserve(self._on_preset, names="value")
        try:
            self.preset.value = name
        finally:
            self.preset.observe(self._on_preset, names="value")
