"""The "Show code" panel: the code that reproduces the Explorer's current fit, to copy into a cell.

Three pieces, all plain text (string formatting only, so the panel follows
every Explorer update at no cost):

1. the data: ``lmm_teach.simulate(lmm_teach.Design(<fields that differ
   from the defaults>), seed=N)`` for simulated data, ``pd.read_csv("<file>")``
   for the learner's own; then the measurements the learner moved or added
   by hand in the LMM tab, one line each, so that the code gives the numbers
   the Explorer shows;
2. the same LMM in pandas + statsmodels (:meth:`LMMResult.statsmodels_code`),
   whose estimates agree with ours to optimiser precision, and the
   lmm_teach call that gives exactly the Explorer's numbers;
3. the model in R (lme4 formula, lmerTest for the Satterthwaite df).
"""

from __future__ import annotations

import dataclasses

import ipywidgets as widgets

from lmm_teach.design import Design
from lmm_teach.widgets.base import Panel, StatusArea, escape

__all__ = ["CodePanel", "design_code", "python_code", "r_code", "explorer_tab"]

#: Where the R code reads simulated data from (the Python code shows how to write it).
R_CSV = "explorer_data.csv"

_PRE_STYLE = ("background:var(--jp-cell-editor-background);color:var(--jp-content-font-color1);"
              "border:1px solid var(--jp-border-color2);padding:6px 8px;margin:2px 0 8px 0;font-size:12px;"
              "line-height:1.35;white-space:pre;overflow-x:auto;user-select:text")


def _value(v) -> str:
    """A field value as Python source that rebuilds it exactly."""
    if isinstance(v, tuple):
        return "(" + ", ".join(_value(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))  # 2 rather than 2.0: Design converts, and the value is the same
    return repr(v)


def design_code(design: Design, *, name: str = "lmm_teach.Design") -> str:
    """``Design(...)`` with the fields that differ from the defaults, as Python source.

    Examples
    --------
    >>> design_code(Design(n_subjects=20, mcar=0.3))
    'lmm_teach.Design(n_subjects=20, mcar=0.3)'
    >>> design_code(Design())
    'lmm_teach.Design()'
    """
    default = Design()
    changed = [(f.name, getattr(design, f.name)) for f in dataclasses.fields(Design)
               if getattr(design, f.name) != getattr(default, f.name)]
    args = [f"{k}={_value(v)}" for k, v in changed]
    one_line = f"{name}({', '.join(args)})"
    if len(one_line) <= 88:
        return one_line
    inner = "".join(f"    {a},\n" for a in args)
    return f"{name}(\n{inner})"


def _call(func: str, first: str, kwargs: dict) -> str:
    """``func(first, k=v, ...)``; the values are Python source already."""
    args = ", ".join([first] + [f"{k}={v}" for k, v in kwargs.items()])
    text = f"{func}({args})"
    if len(text) <= 96:
        return text
    inner = "".join(f"    {k}={v},\n" for k, v in kwargs.items())
    return f"{func}(\n    {first},\n{inner})"


def python_code(lmm, *, columns, random_slope: bool, design: Design | None = None, seed: int | None = None,
                file_name: str = "your_file.csv", data_code: str | None = None, anova: bool = True,
                edits: str = "") -> str:
    """The Python code that rebuilds the data and the fit.

    Parameters
    ----------
    lmm : LMMResult
        The fit (numeric time) to reproduce.
    columns : Columns
        The column roles of the analysis.
    random_slope : bool
    design, seed : optional
        For simulated data; otherwise the data are read from ``file_name``
        (or loaded by ``data_code``, Python source that defines ``data``).
    anova : bool
        Also print the RM-ANOVA (when the analysis has one).
    edits : str
        Python source that applies the learner's hand edits to ``data``
        (:func:`lmm_teach.widgets.drag.edit_code`).
    """
    head = ["import lmm_teach"]
    body = []
    if design is not None:
        body += ["# 1. The data: the Explorer's simulated study (the same design and seed give the same data)",
                 f"design = {design_code(design)}",
                 f"data = lmm_teach.simulate(design, seed={int(seed) if seed is not None else None})",
                 f"# data.to_csv({R_CSV!r}, index=False)  # to fit the model in R too (see below)"]
    else:
        data_code = data_code or f"data = pd.read_csv({file_name!r})"
        if "pd." in data_code:
            head.insert(0, "import pandas as pd")
        body += ["# 1. The data: yours, in long format (one row per measurement)", data_code]
    if edits:
        if "pd." in edits and "import pandas as pd" not in head:
            head.insert(0, "import pandas as pd")
        body += ["# ... and the measurements you moved or added by hand in the Explorer", edits]
    body += ["", "# 2. The LMM with pandas + statsmodels (estimates agree with lmm_teach's to optimiser precision)"]
    try:
        sm = lmm.statsmodels_code("data")
    except NotImplementedError as exc:
        body.append(f"# statsmodels cannot fit this model: {exc}")
    else:
        rest = []
        for line in sm.strip("\n").splitlines():
            if line.startswith("import "):
                if line not in head:
                    head.append(line)
            elif line or (rest and rest[-1]):
                rest.append(line)
        body += rest
    kwargs = {"y": repr(columns.y), "subject": repr(columns.subject), "time": repr(columns.time)}
    for role in ("visit", "between", "cluster"):
        if getattr(columns, role) is not None:
            kwargs[role] = repr(getattr(columns, role))
    if random_slope:
        kwargs["random_slope"] = "True"
    if lmm.method != "REML":
        kwargs["method"] = repr(lmm.method)
    if design is not None:
        kwargs["truth"] = "design"  # the truth column of the comparison, as in the Explorer
    body += ["", "# 3. The same analysis with lmm_teach: exactly the Explorer's numbers (Satterthwaite df as",
             "#    lmerTest), with the LMM with categorical time and the RM-ANOVA beside it",
             "analysis = " + _call("lmm_teach.analyze", "data", kwargs),
             "print(analysis.lmm.summary())"]
    if anova:
        body.append("print(analysis.anova.summary())")
    body.append("print(analysis.comparison)")
    return "\n".join(head + [""] + body) + "\n"


def r_code(lmm, *, columns, simulated: bool, file_name: str = "your_file.csv") -> str:
    """The same LMM in R: lme4's formula, fitted with lmerTest (Satterthwaite df, type-III F)."""
    csv = R_CSV if simulated else file_name
    lines = ["# R: lme4 with lmerTest's Satterthwaite df" + (
        f" (write the data first: data.to_csv({R_CSV!r}, index=False) in Python)" if simulated else ""),
        "library(lmerTest)", f'data <- read.csv("{csv}")']
    for role in ("subject", "between", "cluster"):
        col = getattr(columns, role)
        if col is not None:
            lines.append(f"data${col} <- factor(data${col})")
    reml = "TRUE" if lmm.method == "REML" else "FALSE"
    lines += [f"fit <- lmer({lmm.lme4_formula}, data = data, REML = {reml})",
              "summary(fit)",
              "anova(fit)  # type-III F tests, Satterthwaite df",
              "ranova(fit)  # likelihood-ratio tests of the random effects"]
    return "\n".join(lines) + "\n"


class CodePanel(Panel):
    """The code that reproduces the current fit: pandas + statsmodels, lmm_teach, and R.

    Parameters
    ----------
    result : ExplorerResult or LMMResult, optional
        What to reproduce (an Explorer update, or a fit of your own).
    explorer : Explorer, optional
        Follow the Explorer: updated after every Explorer update.
    design, seed : optional
        With an ``LMMResult``: the simulated data it was fitted to.
    file_name : str
        With a learner's own data: the CSV file the code reads.

    Attributes
    ----------
    code : str
        The Python code (what ``python_html`` shows).
    r : str
        The R code.
    python_html, r_html : ipywidgets.HTML
        ``<pre>`` blocks (CSS classes ``lmm-code-python``, ``lmm-code-r``).

    Examples
    --------
    >>> import lmm_teach
    >>> bp = lmm_teach.load_bp()
    >>> fit = lmm_teach.fit_lmm(bp, y="bp", subject="patient", time="time_num")
    >>> panel = CodePanel(fit, file_name="bp.csv")
    >>> "smf.mixedlm('bp ~ time_num'" in panel.code
    True
    """

    def __init__(self, result=None, *, explorer=None, design: Design | None = None, seed: int | None = None,
                 file_name: str = "your_file.csv"):
        self.explorer = explorer
        self.file_name = file_name
        self._pending = None
        self._watching = False
        self.result = None
        self.code = ""
        self.r = ""
        self.status = StatusArea()
        intro = widgets.HTML("<p style='margin:2px 0'>The code behind the numbers you see: copy it into a cell (or "
                             "into R) to reproduce the fit. It follows every change you make.</p>")
        self.python_html = widgets.HTML()
        self.python_html.add_class("lmm-code-python")
        self.r_html = widgets.HTML()
        self.r_html.add_class("lmm-code-r")
        self.layout = widgets.VBox([intro, self.status.widget,
                                    widgets.HTML("<b style='font-size:12px'>Python</b>"), self.python_html,
                                    widgets.HTML("<b style='font-size:12px'>R</b>"), self.r_html],
                                   layout=widgets.Layout(width="600px"))
        self._finish_layout("lmm-code")
        if result is not None:
            self.update(result, design=design, seed=seed)

    def prepare(self, result, *, design: Design | None = None, seed: int | None = None,
                file_name: str | None = None, data_code: str | None = None):
        """Format the code for ``result``; return the function that shows it."""
        file_name = file_name or self.file_name
        edits = ""
        if _explorer_result(result):
            lmm, columns, random_slope = result.lmm, result.columns, bool(result.random_slope)
            design, seed = result.design, result.seed
            anova = result.anova is not None
            if result.edits:
                from lmm_teach.widgets.drag import edit_code

                edits = edit_code(result.base.data, result.data, y=columns.y)
        else:  # an LMMResult
            lmm, columns, random_slope, anova = result, result.columns, bool(result.random_slope), False
        code = python_code(lmm, columns=columns, random_slope=random_slope, design=design, seed=seed,
                           file_name=file_name, data_code=data_code, anova=anova, edits=edits)
        r = r_code(lmm, columns=columns, simulated=design is not None, file_name=file_name)

        def show() -> None:
            self.result, self.code, self.r = result, code, r
            self.python_html.value = _pre(code, "python", "Python code that reproduces the fit")
            self.r_html.value = _pre(r, "r", "R code of the same model")
        return show

    def update(self, result, **kwargs) -> None:
        """Show the code for a new result."""
        self.prepare(result, **kwargs)()

    def explorer_updated(self, result) -> None:
        """After every Explorer update: string formatting only.

        Data edited by hand wait until this tab is shown: their code asks for
        the RM-ANOVA of the edited data, which a drag does not compute.
        """
        if getattr(result, "edits", 0) and not self._shown():
            self._pending = result
            self._watch()
            return
        self._pending = None
        file_name = data_code = None
        data = result.base.data if getattr(result, "base", None) is not None else result.data
        if result.design is None and self.explorer is not None:
            # the learner's data came from the "Your own data" tab: its file, or the example
            own = getattr(self.explorer, "extensions", {}).get("Your own data")
            if own is not None and getattr(own, "data", None) is data:
                file_name, data_code = own.file_name, own.data_code
        try:
            self.update(result, file_name=file_name, data_code=data_code)
        except Exception as exc:  # never break the Explorer; say why the code is missing
            self.status.problem("The code cannot be shown", f"{type(exc).__name__}: {exc}")
        else:
            self.status.clear()


    def _shown(self) -> bool:
        tabs = getattr(self.explorer, "tabs", None)
        if tabs is None:
            return True
        i = tabs.selected_index
        return i is not None and 0 <= i < len(tabs.children) and tabs.children[i] is self.layout

    def _watch(self) -> None:
        if not self._watching and getattr(self.explorer, "tabs", None) is not None:
            self.explorer.tabs.observe(self._on_tab, names="selected_index")
            self._watching = True

    def _on_tab(self, change) -> None:
        if self._pending is not None and self._shown():
            self.explorer_updated(self._pending)


def _explorer_result(result) -> bool:
    """Whether ``result`` is an ExplorerResult (asked without reading its analysis, which may not be computed yet)."""
    return dataclasses.is_dataclass(result) and any(f.name == "analysis" for f in dataclasses.fields(result))


def _pre(code: str, language: str, label: str) -> str:
    return (f"<pre class='lmm-code-block' data-language='{language}' aria-label='{escape(label)}' "
            f"style='{_PRE_STYLE}'>{escape(code)}</pre>")


def explorer_tab(explorer) -> CodePanel:
    """The Explorer's "Show code" tab (filled at the Explorer's first update)."""
    return CodePanel(explorer=explorer)
