"""The Explorer as a web app for a class: limits for a shared server.

``make app`` (or ``lmm-teach app``) serves ``app/explorer.ipynb`` with Voila:
a page that shows the Explorer and no code cell.  Every learner's page gets its
own kernel on the teacher's server, so a page must not be able to take the
whole machine; :class:`AppLimits` caps what one page may ask for:

* the number of patients and of visits of a simulated design (bigger designs
  are explained in the status area, never simulated);
* the replicates of one Monte Carlo study, and the processes it runs on;
* one study at a time per page (the Monte Carlo panel refuses a second Run
  while one is running);
* the rows of an uploaded CSV file.

Nothing a learner types is evaluated as code: the controls hold numbers,
choices and visit times (parsed as numbers), the uploaded file is parsed as
CSV, and the "Show code" tab only shows text.  The limits are read from
environment variables (``LMM_TEACH_MAX_SUBJECTS`` ...; see
:meth:`AppLimits.from_env`), so a teacher sets them where the server starts.

Examples
--------
>>> limits = AppLimits(max_subjects=100, max_visits=6)
>>> limits.check(__import__("lmm_teach").Design(n_subjects=40))
>>> AppLimits.from_env({"LMM_TEACH_MAX_REPS": "300"}).max_reps
300
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["AppLimits", "explorer_app", "refuse_code_requests", "REFUSAL"]


@dataclass(frozen=True)
class AppLimits:
    """What one page of the app may ask of a shared server.

    Attributes
    ----------
    max_subjects : int
        Most patients in a simulated design (the slider's end).
    max_visits : int
        Most visits in a simulated design.
    max_reps : int
        Most replicates in one Monte Carlo study.
    study_workers : int
        Processes one study runs on (1: in the page's own kernel).
    max_rows : int
        Most rows in an uploaded CSV file.
    """

    max_subjects: int = 200
    max_visits: int = 10
    max_reps: int = 1000
    study_workers: int = 1
    max_rows: int = 20_000

    #: Environment variable of each limit.
    ENV = {"max_subjects": "LMM_TEACH_MAX_SUBJECTS", "max_visits": "LMM_TEACH_MAX_VISITS",
           "max_reps": "LMM_TEACH_MAX_REPS", "study_workers": "LMM_TEACH_STUDY_WORKERS",
           "max_rows": "LMM_TEACH_MAX_ROWS"}

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{f.name} must be a whole number of at least 1, got {v!r}")
        if self.max_subjects < 2:
            raise ValueError(f"max_subjects must be at least 2 (a mixed model needs several subjects), "
                             f"got {self.max_subjects}")
        if self.max_visits < 2:
            raise ValueError(f"max_visits must be at least 2, got {self.max_visits}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppLimits:
        """The defaults, with any limit set in ``LMM_TEACH_MAX_SUBJECTS``, ``LMM_TEACH_MAX_VISITS``,
        ``LMM_TEACH_MAX_REPS``, ``LMM_TEACH_STUDY_WORKERS`` or ``LMM_TEACH_MAX_ROWS``."""
        environ = os.environ if environ is None else environ
        given = {}
        for name, var in cls.ENV.items():
            text = environ.get(var, "").strip()
            if not text:
                continue
            try:
                given[name] = int(text)
            except ValueError:
                raise ValueError(f"{var} must be a whole number, got {text!r}") from None
        return cls(**given)

    def check(self, design) -> None:
        """Raise ``ValueError`` (a sentence for the learner) when ``design`` is beyond the limits."""
        if design.n_subjects > self.max_subjects:
            raise ValueError(f"n_subjects = {design.n_subjects} is more than this shared server allows "
                             f"({self.max_subjects} patients): choose at most {self.max_subjects}")
        if design.n_visits > self.max_visits:
            raise ValueError(f"visit_times has {design.n_visits} visits, more than this shared server allows "
                             f"({self.max_visits}): give at most {self.max_visits} visit times")

    def check_rows(self, n_rows: int) -> None:
        """Raise ``ValueError`` when an uploaded table has more than ``max_rows`` rows."""
        if n_rows > self.max_rows:
            raise ValueError(f"the file has {n_rows} rows, more than this shared server accepts "
                             f"({self.max_rows}); analyse a smaller extract, or run lmm_teach on your own computer")


def explorer_app(limits: AppLimits | None = None, **kwargs):
    """The Explorer for a shared server: ``Explorer(limits=limits or AppLimits.from_env(), **kwargs)``.

    BokehJS is loaded inline first (the page needs it before the first figure;
    Voila runs no ``%load_ext``).
    """
    from lmm_teach.widgets.explorer import Explorer
    from lmm_teach.widgets.notebook import setup

    setup()
    return Explorer(limits=limits if limits is not None else AppLimits.from_env(), **kwargs)


#: What a code request to an app page's kernel gets back.
REFUSAL = "This page is an lmm_teach app: its kernel runs no code sent to it."


def refuse_code_requests() -> bool:
    """Make this kernel refuse code from now on (for the app page, after the app is built).

    Voila executes the app notebook itself and strips its code from the page,
    but the page's kernel connection is the ordinary Jupyter one: a crafted
    message could still ask the kernel to run code.  After this call the
    kernel answers every ``execute_request`` with an error (the code is not
    run) and drops debugger requests; the widgets' messages (comms) still
    flow.  Returns False outside a Jupyter kernel (nothing to guard).
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipywidgets
        return False
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None or not hasattr(kernel, "shell_handlers"):
        return False

    def refuse(stream, ident, parent):
        content = {"status": "error", "ename": "Refused", "evalue": REFUSAL, "traceback": [REFUSAL],
                   "execution_count": kernel.execution_count}
        kernel.session.send(stream, "execute_reply", content, parent, ident=ident)

    kernel.shell_handlers["execute_request"] = refuse
    for handlers in (kernel.shell_handlers, getattr(kernel, "control_handlers", {})):
        handlers.pop("debug_request", None)
    return True
