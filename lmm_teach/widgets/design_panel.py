"""The Design panel: a control for every Design knob, presets, a seed, "new sample"."""

from __future__ import annotations

import ipywidgets as widgets

from lmm_teach.design import FIELDS, PRESETS, Design
from lmm_teach.widgets.base import Batcher, Panel, StatusArea, escape
from lmm_teach.widgets.controls import GROUP_TITLES, control_row, control_value, make_control, set_control

__all__ = ["DesignPanel"]

_CUSTOM = "(your own design)"


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
                 show_errors: bool = True):
        design = Design() if design is None else design
        self.show_errors = show_errors
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
                                       layout=widgets.Layout(width="400px"))
        self.preset.add_class("lmm-preset")
        self.random_slope = widgets.Checkbox(
            value=bool(design.sd_slope > 0) if random_slope is None else bool(random_slope),
            description="LMM: give each patient its own slope", indent=False,
            tooltip="Fit y ~ time + (time | patient) instead of (1 | patient) [random_slope]",
            layout=widgets.Layout(width="400px"))
        self.random_slope.add_class("lmm-random-slope")
        for w in self.controls.values():
            w.observe(self._on_control, names="value")
        self.seed.observe(lambda change: self.batcher.changed(), names="value")
        self.random_slope.observe(lambda change: self.batcher.changed(), names="value")
        self.preset.observe(self._on_preset, names="value")
        self.new_sample.on_click(lambda button: self.next_sample())
        self._sync_preset(design)

        def row(name):
            return control_row(FIELDS[name], self.controls[name])

        groups = []
        for group, title in GROUP_TITLES.items():
            members = [row(n) for n, info in FIELDS.items() if info.group == group]
            if members:
                heading = widgets.HTML(f"<h4 style='margin:8px 0 2px 0'>{escape(title)}</h4>")
                box = widgets.VBox([heading, *members])
                box.add_class(f"lmm-design-group-{group.lower().replace(' ', '-')}")
                groups.append(box)
        known = set(GROUP_TITLES)
        rest = [row(n) for n, info in FIELDS.items() if info.group not in known]
        if rest:  # a field added to Design later still gets a control
            groups.append(widgets.VBox([widgets.HTML("<h4>More</h4>"), *rest]))
        model = widgets.VBox([widgets.HTML("<h4 style='margin:8px 0 2px 0'>Model fitted</h4>"),
                              self.random_slope])
        from lmm_teach.widgets.sweep import SweepControl

        self.sweep = SweepControl(self)
        self.layout = widgets.VBox(
            [self.preset, widgets.HBox([self.seed, self.new_sample]), self.status.widget, *groups, model,
             self.sweep.layout],
            layout=widgets.Layout(width="420px"),
        )
        self._finish_layout("lmm-design")

    # ------------------------------------------------------------------ state
    @property
    def design(self) -> Design:
        """The Design the controls describe (raises ``ValueError`` when they describe none)."""
        values = {name: control_value(w, FIELDS[name]) for name, w in self.controls.items()}
        return Design(**values)

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
        self.batcher.changed()

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
