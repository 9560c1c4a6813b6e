"""Animate a sweep: a Play control that moves one Design knob step by step.

The Play control runs in the browser: at each tick it sends one new value,
the kernel moves the knob (which refits and redraws, as a slider release
does) and is free again until the next tick.  So the kernel is never busy
for longer than one update, and Stop (or Pause) always works.  The sweep
only sets the knob's control: the Explorer or panel that listens to it does
the rest.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from lmm_teach.design import FIELDS
from lmm_teach.widgets.controls import set_control

__all__ = ["SweepControl", "SWEEPS"]

#: Knobs a sweep can move: field -> (start, stop, step), ranges a class can watch in a minute.
SWEEPS = {
    "mar_dropout": (0.0, 0.5, 0.05),
    "mcar": (0.0, 0.5, 0.05),
    "mnar_dropout": (0.0, 0.5, 0.05),
    "sd_intercept": (0.0, 10.0, 1.0),
    "sd_slope": (0.0, 2.0, 0.2),
    "sd_residual": (0.5, 8.0, 0.75),
    "n_subjects": (6, 60, 6),
}


class SweepControl:
    """A Play control on a Design panel that sweeps one knob from a start to a stop value.

    Parameters
    ----------
    design_panel : DesignPanel
        Whose control the sweep moves.
    knob : str
        The Design field to sweep first (a key of :data:`SWEEPS`).

    Attributes
    ----------
    knob : ipywidgets.Dropdown
        Which field (``lmm-sweep-knob``).
    play : ipywidgets.Play
        Step index; Play/Pause/Stop in the browser (``lmm-sweep-play``).
    values : list
        The values of the current sweep, one per step.
    layout : ipywidgets.VBox
        CSS class ``lmm-sweep``.

    Examples
    --------
    >>> from lmm_teach.widgets.design_panel import DesignPanel
    >>> panel = DesignPanel()
    >>> sweep = SweepControl(panel)
    >>> sweep.play.value = 4               # what the fourth tick of Play does
    >>> panel.controls["mar_dropout"].value
    0.2
    """

    def __init__(self, design_panel, *, knob: str = "mar_dropout", interval_ms: int = 900):
        self.panel = design_panel
        options = [(FIELDS[k].label, k) for k in SWEEPS if k in FIELDS]
        self.knob = widgets.Dropdown(options=options, value=knob, description="Sweep",
                                     style={"description_width": "initial"}, layout=widgets.Layout(width="300px"))
        self.knob.add_class("lmm-sweep-knob")
        self.play = widgets.Play(value=0, min=0, max=1, step=1, interval=int(interval_ms),
                                 description="Play the sweep", show_repeat=False)
        self.play.add_class("lmm-sweep-play")
        self.readout = widgets.HTML()
        self.readout.add_class("lmm-sweep-readout")
        self.values: list = []
        self._quiet = False
        self.knob.observe(lambda ch: self._configure(), names="value")
        self.play.observe(self._on_step, names="value")
        self.play.observe(self._on_playing, names="playing")
        head = widgets.HTML("<p style='margin:0;font-size:12px'>Press Play: the knob moves step by step and "
                            "everything refits at each step. Pause or Stop at any time.</p>")
        self.layout = widgets.VBox([head, self.knob, widgets.HBox([self.play, self.readout])])
        self.layout.add_class("lmm-sweep")
        self._configure()

    def _configure(self) -> None:
        start, stop, step = SWEEPS[self.knob.value]
        n = int(round((stop - start) / step))
        vals = start + step * np.arange(n + 1)
        info = FIELDS[self.knob.value]
        self.values = [int(v) for v in vals] if info.kind == "int" else [round(float(v), 6) for v in vals]
        self._quiet = True  # choosing a knob does not move it; Play does
        try:
            self.play.playing = False
            self.play.max = len(self.values) - 1
            self.play.value = 0
        finally:
            self._quiet = False
        self._readout(0)

    def _readout(self, i: int) -> None:
        info = FIELDS[self.knob.value]
        self.readout.value = (f"<span style='font-size:12px'>step {i} of {len(self.values) - 1}: "
                              f"{info.label} = <b>{self.values[i]}</b></span>")

    def _on_playing(self, change) -> None:
        if change["new"] and self.play.value == 0:
            self.apply(0)  # the sweep starts from its first value

    def _on_step(self, change) -> None:
        if not self._quiet:
            self.apply(int(change["new"]))

    def apply(self, i: int) -> None:
        """Set the knob to the sweep's value number ``i`` (what one Play tick does)."""
        i = int(np.clip(i, 0, len(self.values) - 1))
        name = self.knob.value
        set_control(self.panel.controls[name], FIELDS[name], self.values[i])
        self._readout(i)
