"""The Likelihood panel: the REML surface of the fitted LMM, and the optimiser's path over it.

Random intercept: the profiled log-likelihood over theta = sd(subject) /
sigma, with the optimum, the boundary 0 and the profile interval.  Random
slope: contours of the profiled deviance over two parameters with the
optimiser's iterates, stepped by a Play control (it runs in the browser: each
step asks the kernel for one tiny redraw, so the kernel stays free and Stop
always works).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import ipywidgets as widgets

from lmm_teach.lmm.profile import deviance_surface, problem_of, profile_intercept
from lmm_teach.plots import update_sources
from lmm_teach.plots.surface import contour_data, make_contour_figure, make_profile_figure, profile_data
from lmm_teach.widgets.base import Panel, StatusArea, escape
from lmm_teach.widgets.notebook import embed

__all__ = ["SurfacePanel", "optimizer_path", "profile_reading", "contour_reading"]


def optimizer_path(result):
    """The optimiser's own iterates of theta (k, 3) for a random-slope fit, or None when the engine has no trace.

    Uses the engine's trace API (``lmm_teach.lmm.surface.optimizer_path``) when it is installed.
    """
    try:
        from lmm_teach.lmm.surface import optimizer_path as engine_path
        from lmm_teach.lmm.surface import theta_names
    except ImportError:
        return None
    path = engine_path(result)
    names = list(theta_names(result))[:3]
    if len(path) == 0 or not set(names) <= set(path.columns):
        return None
    return path[names].to_numpy(float)


def profile_reading(prof) -> str:
    """What the random-intercept profile says, in words."""
    lo, hi = prof.interval
    hi_t = f"{hi:.2f}" if math.isfinite(hi) else "infinity"
    drop = prof.loglik_hat - prof.loglik_at_zero
    if prof.singular:
        return (f"The log-likelihood is highest at the boundary theta = 0: a singular fit. The curve only falls "
                f"from the boundary, so any variation between {prof.subject}s makes these data less likely; the "
                f"estimate 0 sits on the edge of what a variance may be, not in a valley. The 95% profile "
                f"interval [0, {hi_t}] still allows an SD up to {prof.sd_interval[1]:.2f}: 'estimated 0' is not "
                f"'shown to be 0'.")
    text = (f"The log-likelihood peaks at theta = {prof.theta_hat:.2f} (SD between {prof.subject}s "
            f"{prof.sd_hat:.2f}, residual SD {prof.sigma_hat:.2f}). The 95% profile interval for theta is "
            f"[{lo:.2f}, {hi_t}]")
    if lo > 0:
        text += (f"; it excludes 0. At theta = 0 (no random intercept) the log-likelihood is {drop:.1f} lower: "
                 f"the data show real differences between {prof.subject}s.")
    else:
        text += (f"; it reaches 0: the data cannot rule out 'no differences between {prof.subject}s' "
                 f"(the log-likelihood at 0 is only {drop:.2f} lower).")
    return text


def contour_reading(surf) -> str:
    a, b, c = surf.theta_hat
    text = (f"The deviance is lowest at the star: theta1 = {a:.3f}, theta3 = {c:.4f} (theta2 = {b:.4f} held at "
            "its estimate: a slice). Contours are 50, 80, 95 and 99 % joint regions (chi-square, 2 df), then "
            "wider.")
    if c == 0.0 or a == 0.0:
        text += (" The star lies on an axis: a variance (or the correlation's freedom) is estimated at its "
                 "boundary, a singular fit: the lowest point of the surface is on its edge.")
    if surf.path is not None:
        text += f" The optimiser took {len(surf.path) - 1} steps from its start (press Play)."
    return text


class SurfacePanel(Panel):
    """The profiled (RE)ML surface of a fit: a profile (random intercept) or contours (random slope).

    Parameters
    ----------
    result : LMMResult, optional
    path : array-like (k, 3), optional
        The optimiser's iterates (default: :func:`optimizer_path`).

    Attributes
    ----------
    surface : InterceptProfile or DevianceSurface or None
    play : ipywidgets.Play
        Steps through the optimiser's path (``lmm-surface-play``).
    step : ipywidgets.IntSlider
        The iterate shown (linked to ``play``).

    Examples
    --------
    >>> import lmm_teach
    >>> m = lmm_teach.fit_lmm(lmm_teach.load_bp(), y="bp", subject="patient", time="time_num")
    >>> panel = SurfacePanel(m)
    >>> panel.kind, len(panel.profile_sources["curve"].data["x"])
    ('profile', 100)
    """

    def __init__(self, result=None, *, path=None):
        self.result = None
        self.surface = None
        self.kind = None
        self.status = StatusArea()
        self.reading = widgets.HTML()
        self.reading.add_class("lmm-surface-reading")
        self.profile_figure, self.profile_sources = make_profile_figure()
        self.contour_figure, self.contour_sources = make_contour_figure()
        self._views = {"profile": embed(self.profile_figure), "contour": embed(self.contour_figure)}
        self.box = widgets.Box([self._views["profile"]])
        self.box.add_class("lmm-surface-figure")
        self.play = widgets.Play(value=0, min=0, max=0, step=1, interval=350, description="Play the path")
        self.play.add_class("lmm-surface-play")
        self.step = widgets.IntSlider(value=0, min=0, max=0, description="Iterate", continuous_update=True)
        self.step.add_class("lmm-surface-step")
        widgets.jslink((self.play, "value"), (self.step, "value"))
        self.step.observe(self._on_step, names="value")
        self.stepper = widgets.HBox([self.play, self.step], layout=widgets.Layout(display="none"))
        self.layout = widgets.VBox([self.status.widget, self.reading, self.stepper, self.box])
        self._finish_layout("lmm-surface")
        if result is not None:
            self.update(result, path=path)

    def prepare(self, result, *, path=None) -> Callable[[], None]:
        """Compute the surface of ``result``; return the function that shows it."""
        if result.time_as != "numeric" and result.random_slope:
            raise ValueError("the surface needs numeric time")
        if result.columns.cluster is not None:
            raise ValueError("the surface is drawn for models without a cluster level "
                             "(three or more variance parameters have no two-dimensional picture)")
        pr = problem_of(result)
        if not result.random_slope:
            surf = profile_intercept(result, problem=pr)
            kind, data, text = "profile", profile_data(surf), profile_reading(surf)
        else:
            if path is None:
                path = optimizer_path(result)
            surf = deviance_surface(result, path=path, problem=pr)
            kind, data, text = "contour", contour_data(surf), contour_reading(surf)
        n_steps = 0 if kind == "profile" or surf.path is None else len(surf.path) - 1

        def show() -> None:
            self.result, self.surface = result, surf
            sources = self.profile_sources if kind == "profile" else self.contour_sources
            update_sources(sources, data)
            self.reading.value = f"<p style='margin:2px 0;line-height:1.4'>{escape(text)}</p>"
            if kind != self.kind:
                self._views[kind].resync()
                self.box.children = [self._views[kind]]
                self.kind = kind
            self.play.playing = False
            self.step.max = self.play.max = n_steps
            self.step.value = n_steps
            self.stepper.layout.display = None if n_steps else "none"
            self.status.clear()
        return show

    def update(self, result, *, path=None) -> None:
        """Show the surface of a new fit."""
        self.prepare(result, path=path)()

    def show_step(self, i: int) -> None:
        """Mark iterate ``i`` of the optimiser's path (what a Play step does)."""
        if self.kind != "contour" or self.surface is None or self.surface.path is None:
            return
        update_sources(self.contour_sources, {"current": contour_data(self.surface, step=i)["current"]})

    def _on_step(self, change) -> None:
        self.show_step(int(change["new"]))

