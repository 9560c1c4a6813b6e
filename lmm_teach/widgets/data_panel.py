"""The "Your own data" panel: upload a CSV (or pass a DataFrame), choose the column roles, analyse.

Inside the Explorer, Analyse hands the data to ``explorer.show_data(...)``, so
the Data, LMM, ANOVA and Compare tabs (and Show code) all work on the
learner's data, without a truth to compare with; "Back to simulated data"
returns to the Design controls.  Alone, the panel shows the comparison of
the LMM and the RM-ANOVA itself (:class:`~lmm_teach.widgets.ComparePanel`).

Every problem (an unreadable file, a text outcome, a between factor that
changes within a subject) is a :class:`~lmm_teach.validate.DataError` whose
message names the column, row or subject; the panel's status shows it, never
a traceback.
"""

from __future__ import annotations

import re
import traceback

import ipywidgets as widgets
import pandas as pd

from lmm_teach.validate import Columns, DataError, check_long, read_csv_bytes
from lmm_teach.widgets.base import Panel, StatusArea, escape
from lmm_teach.widgets.compare_panel import ComparePanel
from lmm_teach.widgets.data_checks import replace_code, sentinel_codes, varies_within, wide_format
from lmm_teach.widgets.explain import explain_error, teaching_notes
from lmm_teach.widgets.tables import html_table

__all__ = ["OwnDataPanel", "guess_roles", "explorer_tab", "ROLES"]

#: The column roles, in the order of the dropdowns: (role, label, required).
ROLES = (
    ("y", "Outcome", True),
    ("subject", "Subject (id)", True),
    ("time", "Time (numeric)", True),
    ("visit", "Visit label", False),
    ("between", "Between-subject factor", False),
    ("cluster", "Cluster (e.g. clinic)", False),
)
_TOOLTIPS = {
    "y": "The measured outcome (a number), one row per measurement",
    "subject": "Who was measured: the same id on every row of one subject",
    "time": "When, as a number (e.g. weeks since baseline): the LMM's time",
    "visit": "The visit's name or number: the RM-ANOVA's within factor (default: the time)",
    "between": "A group each subject belongs to, e.g. the treatment arm (optional)",
    "cluster": "A level above subject, e.g. the clinic (optional)",
}
# An optional role left out.  A string, not None: a Dropdown whose value is None
# shows no selection at all, where the learner should read "(none)".
_NONE = "(none)"

# Words in column names that hint at a role (a token of the name starts with one of them).
_HINTS = {
    "subject": ("subject", "subj", "patient", "participant", "person", "individual", "animal", "child",
                "pupil", "student", "case", "pid", "id"),
    "time": ("time", "week", "month", "day", "year", "hour", "minute", "age", "occasion", "t"),
    "visit": ("visit", "occasion", "wave", "session", "period", "phase", "round"),
    "between": ("arm", "group", "treat", "trt", "condition", "cond", "allocation", "drug", "intervention",
                "therapy"),
    "cluster": ("clinic", "site", "centre", "center", "school", "hospital", "cluster", "practice", "ward",
                "class", "family", "herd", "farm", "centre"),
    "y": ("y", "outcome", "response", "score", "value", "bp", "sbp", "dbp", "weight", "height", "result",
          "level", "measure"),
}


def _tokens(name) -> list[str]:
    # split words on non-letters and on camelCase: "patientID" -> patient, id
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    return re.findall(r"[a-z]+", text.lower())


def _hinted(name, role: str) -> bool:
    toks = _tokens(name)
    return any(t == h or (len(h) > 2 and t.startswith(h)) for t in toks for h in _HINTS[role])


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _share_constant_within(data: pd.DataFrame, col, subject) -> float:
    return float((data.groupby(subject, sort=False, observed=True)[col].nunique(dropna=False) <= 1).mean())


def _constant_within(data: pd.DataFrame, col, subject) -> bool:
    return bool((data.groupby(subject, sort=False, observed=True)[col].nunique(dropna=False) <= 1).all())


def guess_roles(data: pd.DataFrame) -> dict:
    """Guess each column's role from its name and its values.

    Returns a dict ``role -> column`` (None for an optional role left out).
    A guess only pre-selects the dropdowns: the learner checks and changes it.

    Examples
    --------
    >>> import lmm_teach
    >>> guess_roles(lmm_teach.load_bp())
    {'y': 'bp', 'subject': 'patient', 'time': 'time_num', 'visit': 'time', 'between': None, 'cluster': None}
    """
    cols = list(data.columns)
    n = len(data)
    used: set = set()
    out: dict = {role: None for role, _, _ in ROLES}

    def take(role, candidates):
        for c in candidates:
            if c not in used:
                out[role] = c
                used.add(c)
                return

    # subject: a hinted name, else a column with repeated, non-float values
    take("subject", [c for c in cols if _hinted(c, "subject")])
    if out["subject"] is None:
        take("subject", [c for c in cols if not pd.api.types.is_float_dtype(data[c])
                         and 2 <= data[c].nunique() <= max(2, n // 2)])
    subject = out["subject"]
    # time: numeric with a time-like name (the visit gets the text twin, e.g. "time" beside "time_num")
    take("time", [c for c in cols if _numeric(data[c]) and _hinted(c, "time")]
         + [c for c in cols if _numeric(data[c]) and _hinted(c, "visit")])
    take("visit", [c for c in cols if _hinted(c, "visit") or (_hinted(c, "time") and not _numeric(data[c]))])
    if subject is not None:
        # A hinted factor constant in most subjects but not all is still taken (a data-entry error):
        # Analyse then names the subject, where leaving it out would drop the arm from the analysis
        # without a word.  One that changes within most subjects is a within factor: not taken.
        take("between", [c for c in cols if _hinted(c, "between") and 2 <= data[c].nunique() <= 6
                         and _share_constant_within(data, c, subject) >= 0.5])
        take("cluster", [c for c in cols if _hinted(c, "cluster") and 2 <= data[c].nunique() < data[subject].nunique()
                         and _constant_within(data, c, subject)])
    numeric = [c for c in cols if _numeric(data[c]) and c not in used]
    take("y", [c for c in numeric if _hinted(c, "y")]
         + sorted(numeric, key=lambda c: -data[c].nunique()))
    if out["time"] is None:  # no time-like name: the numeric column with the fewest distinct values
        take("time", sorted((c for c in cols if _numeric(data[c]) and c not in used),
                            key=lambda c: data[c].nunique()))
    for role, _, required in ROLES:  # every required dropdown shows some column
        if required and out[role] is None:
            take(role, cols)
    return out


class OwnDataPanel(Panel):
    """Analyse a learner's own long data: upload or pass it, choose the columns, Analyse.

    Parameters
    ----------
    data : DataFrame, optional
        Long data, one row per measurement (not modified).
    explorer : Explorer, optional
        Show the analysis in the Explorer's tabs (``explorer.show_data``).
    name : str
        The file name the Show code tab reads the data from.
    y, subject, time, visit, between, cluster : str, optional
        Column roles; guessed from names and values when omitted.
    random_slope : bool
        Give each subject its own slope in the LMM.

    Attributes
    ----------
    upload : ipywidgets.FileUpload
        A CSV file (parsed with :func:`lmm_teach.validate.read_csv_bytes`).
    roles : dict
        Role (``"y"``, ``"subject"``, ``"time"``, ``"visit"``, ``"between"``,
        ``"cluster"``) -> its Dropdown (value: a column, or ``"(none)"`` for an
        optional role left out; :meth:`columns` reads them).
    random_slope : ipywidgets.Checkbox
    analyse_button, back_button : ipywidgets.Button
    data : DataFrame or None
        The data loaded.
    file_name : str
        Where the data came from (``"your_file.csv"`` for a DataFrame).
    data_code : str
        Python code that loads these data (``pd.read_csv(file_name)``, or
        ``lmm_teach.load_bp()`` for the example), for the Show code tab.
    result : Analysis or None
        The latest successful analysis (:func:`lmm_teach.compare.analyze`).
    compare_panel : ComparePanel or None
        Alone only: the comparison of the latest analysis.

    Examples
    --------
    >>> import lmm_teach
    >>> panel = OwnDataPanel(lmm_teach.load_bp())
    >>> panel.columns().y, panel.columns().time
    ('bp', 'time_num')
    >>> panel.analyse()                                   # doctest: +SKIP
    True
    """

    def __init__(self, data: pd.DataFrame | None = None, *, explorer=None, name: str = "your_file.csv",
                 y: str | None = None, subject: str | None = None, time: str | None = None,
                 visit: str | None = None, between: str | None = None, cluster: str | None = None,
                 random_slope: bool = False):
        self.explorer = explorer
        self.data: pd.DataFrame | None = None
        self.file_name = name
        self.data_code = f"data = pd.read_csv({name!r})"  # how the Show code tab gets these data
        self.result = None
        self.error: Exception | None = None
        self.error_traceback = ""
        self.showing = False  # the Explorer shows these data now
        self.status = StatusArea()
        self.upload = widgets.FileUpload(accept=".csv,.txt,text/csv", multiple=False, description="Upload CSV",
                                         tooltip="A CSV file in long format: one row per measurement, a header line")
        self.upload.add_class("lmm-own-upload")
        self.upload.observe(self._on_upload, names="value")
        self.example_button = widgets.Button(description="Example data", icon="table",
                                             tooltip="Load the blood-pressure example (10 patients, 3 visits)")
        self.example_button.add_class("lmm-own-example")
        self.example_button.on_click(lambda button: self.load_example())
        self.preview = widgets.HTML()
        self.preview.add_class("lmm-own-preview")
        # Questions about the table (a missing-value code, wide format), with the buttons that answer them.
        self.advice = widgets.HTML()
        self.advice.add_class("lmm-own-advice")
        self.missing_button = widgets.Button(description="Treat as missing", icon="eraser",
                                             tooltip="Make the code a missing value (your file is not changed)",
                                             layout=widgets.Layout(width="auto"))
        self.missing_button.add_class("lmm-own-code-missing")
        self.missing_button.on_click(lambda button: self.treat_code(missing=True))
        self.keep_button = widgets.Button(description="Keep as a value", icon="check",
                                          tooltip="It is a real measurement: analyse it as it is",
                                          layout=widgets.Layout(width="auto"))
        self.keep_button.add_class("lmm-own-code-keep")
        self.keep_button.on_click(lambda button: self.treat_code(missing=False))
        self.long_button = widgets.Button(description="Make it long", icon="exchange",
                                          tooltip="Reshape to one row per measurement (pandas melt)",
                                          layout=widgets.Layout(width="auto"))
        self.long_button.add_class("lmm-own-make-long")
        self.long_button.on_click(lambda button: self.make_long())
        self.answers = widgets.HBox([self.missing_button, self.keep_button, self.long_button])
        self.sentinels = []   # open questions about missing-value codes (data_checks.Sentinel)
        self.kept_codes: set = set()
        self.wide = None      # data_checks.WideFormat when the table is one row per subject
        self.roles: dict[str, widgets.Dropdown] = {}
        rows = []
        for role, label, required in ROLES:
            dd = widgets.Dropdown(options=[] if required else [(_NONE, _NONE)], value=None if required else _NONE,
                                  description=label,
                                  tooltip=_TOOLTIPS[role], style={"description_width": "170px"},
                                  layout=widgets.Layout(width="440px"))
            dd.add_class("lmm-own-role")
            dd.add_class(f"lmm-own-{role}")
            self.roles[role] = dd
            rows.append(dd)
        self.random_slope = widgets.Checkbox(value=bool(random_slope), indent=False,
                                             description="LMM: give each subject its own slope",
                                             tooltip="Fit (time | subject) instead of (1 | subject)")
        self.random_slope.add_class("lmm-own-random-slope")
        self.analyse_button = widgets.Button(description="Analyse", icon="play", button_style="primary",
                                             tooltip="Fit the LMM and the RM-ANOVA to these data")
        self.analyse_button.add_class("lmm-own-analyse")
        self.analyse_button.on_click(lambda button: self.analyse())
        self.back_button = widgets.Button(description="Back to simulated data", icon="undo",
                                          tooltip="Show the data simulated from the Design panel again",
                                          layout=widgets.Layout(width="210px"))
        self.back_button.add_class("lmm-own-back")
        self.back_button.on_click(lambda button: self.back_to_simulated())
        buttons = [self.analyse_button] + ([self.back_button] if explorer is not None else [])
        intro = widgets.HTML(
            "<p style='margin:2px 0'>Analyse your own repeated measurements: a CSV file in <b>long format</b>, "
            "one row per measurement, with a column for the subject, the time (a number) and the outcome. "
            "Check the columns below, then press Analyse."
            + (" The other tabs then show your data (there is no truth to compare with)." if explorer else "")
            + "</p>")
        children = [intro, widgets.HBox([self.upload, self.example_button]), self.preview, *rows,
                    self.random_slope, widgets.HBox(buttons), self.status.widget, self.advice, self.answers]
        self.compare_panel = None
        if explorer is None:
            self.compare_panel = ComparePanel()
            children.append(self.compare_panel.layout)
        self.layout = widgets.VBox(children, layout=widgets.Layout(width="600px"))
        self._finish_layout("lmm-own-data")
        self._show_questions()
        if data is not None:
            self.load(data, name=name)
            given = {"y": y, "subject": subject, "time": time, "visit": visit, "between": between,
                     "cluster": cluster}
            for role, col in given.items():
                if col is not None:
                    self._select(role, col)

    # ------------------------------------------------------------------ loading
    def load(self, data: pd.DataFrame, *, name: str = "your_file.csv") -> bool:
        """Show a DataFrame and guess its column roles; False (explained) if it is not a table."""
        limits = getattr(self.explorer, "limits", None)
        if limits is not None and isinstance(data, pd.DataFrame):
            try:
                limits.check_rows(len(data))
            except ValueError as exc:
                self.status.problem("This file is too large for this server", str(exc))
                return False
        if not isinstance(data, pd.DataFrame) or data.shape[1] < 2 or len(data) == 0:
            what = type(data).__name__ if not isinstance(data, pd.DataFrame) else f"a table of shape {data.shape}"
            self.status.problem("These data cannot be used", f"Expected a table (a pandas DataFrame) with at least "
                                f"two columns and one row, got {what}.", hint="Load a long table: one row per "
                                "measurement.")
            return False
        self.data, self.file_name, self.result = data, name, None
        self.data_code = f"data = pd.read_csv({name!r})"
        guess = guess_roles(data)
        columns = list(data.columns)
        for role, _label, required in ROLES:
            dd = self.roles[role]
            options = [(str(c), c) for c in columns]
            dd.options = options if required else [(_NONE, _NONE), *options]
            dd.value = guess[role] if guess[role] is not None or required else _NONE
        self.preview.value = _preview(data, name)
        self._clear_results()
        self.kept_codes = set()
        self.wide = wide_format(data)
        self.sentinels = [s for c in columns for s in sentinel_codes(data, c)]
        notes = [f"Loaded {name}: {len(data)} rows, {data.shape[1]} columns. The column roles below are a guess: "
                 "check them, then press Analyse."]
        if self.wide is not None:
            notes.append(self.wide.message())
        notes += [s.question() + " Answer with the buttons below." for s in self.sentinels]
        between, subject = guess["between"], guess["subject"]
        moving = varies_within(data, between, subject) if between is not None and subject is not None else None
        if moving is not None:
            who, values = moving
            notes.append(f"Column {between!r} looks like a between-subject factor (e.g. the arm), but it changes "
                         f"within {subject} {who} ({', '.join(map(str, values))}). Is that a data-entry error? "
                         "Fix the file, or choose (none) as the between-subject factor.")
        self.status.show(notes, title="Your data")
        self._show_questions()
        return True

    def _show_questions(self) -> None:
        """The buttons that answer the open questions, and the code to copy for wide data."""
        self.missing_button.layout.display = self.keep_button.layout.display = \
            None if self.sentinels else "none"
        if self.sentinels:
            code = f"{self.sentinels[0].value:g}"
            self.missing_button.description = f"Treat {code} in {self.sentinels[0].column!r} as missing"
            self.keep_button.description = f"Keep {code} as a value"
        self.long_button.layout.display = None if self.wide is not None else "none"
        self.advice.value = (
            "<pre style='background:var(--jp-cell-editor-background);color:var(--jp-content-font-color1);"
            "border:1px solid var(--jp-border-color2);padding:6px 8px;margin:2px 0;font-size:12px;"
            f"white-space:pre;overflow-x:auto;user-select:text'>{escape(self.wide.code)}</pre>"
            if self.wide is not None else "")

    def treat_code(self, *, missing: bool) -> bool:
        """Answer the first open question about a missing-value code: make it missing, or keep it."""
        if not self.sentinels or self.data is None:
            return False
        code = self.sentinels.pop(0)
        if missing:
            self.data = replace_code(self.data, code.column, code.value)
            self.data_code += (f"\ndata[{code.column!r}] = data[{code.column!r}].mask(data[{code.column!r}] == "
                               f"{code.value:g})  # {code.value:g} codes a missing measurement")
            self.preview.value = _preview(self.data, self.file_name)
            said = f"{code.n} value{'s' if code.n != 1 else ''} {code.value:g} in {code.column!r} are now missing."
        else:
            self.kept_codes.add((code.column, code.value))
            said = f"{code.value:g} in {code.column!r} is kept as a measurement."
        self._show_questions()
        rest = [s.question() + " Answer with the buttons below." for s in self.sentinels]
        self.status.show([said, *rest] if rest else [said + " Press Analyse."], title="Your data")
        return True

    def make_long(self) -> bool:
        """Reshape wide data (one row per subject) to long with pandas ``melt`` and load the result."""
        if self.wide is None or self.data is None:
            return False
        wide, code, name = self.wide, self.data_code, self.file_name
        ok = self.load(wide.melt(self.data), name=name)
        if ok:
            self.data_code = code + "\n" + wide.code + "\ndata = long"
        return ok

    def _clear_results(self) -> None:
        """Nothing from another table (or an earlier try) stays on screen unmarked."""
        self.result = None
        if self.compare_panel is not None:
            self.compare_panel.layout.layout.display = "none"

    def load_csv_bytes(self, raw: bytes, *, name: str = "your_file.csv") -> bool:
        """Parse CSV content (as an upload gives it) and load it; False (explained) if it cannot be read."""
        try:
            data = read_csv_bytes(bytes(raw), name=name)
        except DataError as exc:
            self.error, self.error_traceback = exc, traceback.format_exc()
            self.status.problem("This file cannot be read", str(exc),
                                hint="Save the spreadsheet as CSV (UTF-8), one row per measurement, and upload "
                                     "it again.")
            return False
        return self.load(data, name=name)

    def load_example(self) -> bool:
        """Load the blood-pressure example (``lmm_teach.load_bp()``)."""
        from lmm_teach.datasets import load_bp

        if not self.load(load_bp(), name="bp.csv"):
            return False
        self.data_code = ("data = lmm_teach.load_bp()\n"
                          "# data.to_csv('bp.csv', index=False)  # to fit the model in R too (see below)")
        return True

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        self.load_csv_bytes(bytes(item["content"]), name=str(item.get("name") or "your_file.csv"))

    def _select(self, role: str, col) -> bool:
        dd = self.roles[role]
        if col not in [v for _, v in dd.options if v != _NONE]:
            self.status.problem("These data cannot be analysed",
                                f"column {col!r} (the {role}) is not in the data; the columns are: "
                                f"{', '.join(map(str, self.data.columns))}",
                                hint="Choose the column in the dropdown below.")
            return False
        dd.value = col
        return True

    # ------------------------------------------------------------------ analysing
    def columns(self) -> Columns:
        """The column roles chosen in the dropdowns."""
        v = {role: None if dd.value == _NONE else dd.value for role, dd in self.roles.items()}
        return Columns(**v)

    def analyse(self) -> bool:
        """Analyse the data with the chosen columns; True on success, else the status explains."""
        if self.data is None:
            self.status.problem("No data yet", "Upload a CSV file (or load the example data) first.")
            return False
        cols = self.columns()
        missing = [label for role, label, required in ROLES if required and getattr(cols, role) is None]
        if missing:
            self.status.problem("Choose the columns", f"No column is chosen as the {missing[0].lower()}.",
                                hint="Pick it in the dropdown above, then press Analyse.")
            return False
        kw = {"y": cols.y, "subject": cols.subject, "time": cols.time, "visit": cols.visit,
              "between": cols.between, "cluster": cols.cluster, "random_slope": bool(self.random_slope.value)}
        if self.wide is not None and self.data[cols.subject].is_unique:
            self._failed(DataError(self.wide.message() + " (the code is below)"), "This table is in wide format",
                         "Press 'Make it long', or reshape it with the code below and load the result.")
            return False
        open_codes = [s for s in self.sentinels if s.column in (cols.y, cols.time)]
        if open_codes:
            q = open_codes[0]
            self._failed(DataError(q.question()), "Is this a code for a missing value?",
                         f"Press 'Treat {q.value:g} in {q.column!r} as missing', or 'Keep {q.value:g} as a value' "
                         "if it is a real measurement; then Analyse again.")
            return False
        try:
            # Check here first, so the message appears where the columns were chosen.
            check_long(self.data, cols)
            if self.explorer is None:
                from lmm_teach.compare import analyze

                analysis = analyze(self.data, **kw)
                show = self.compare_panel.prepare(analysis)
            else:
                if not self.explorer.show_data(self.data, **kw):
                    raise self.explorer.error or RuntimeError("the Explorer could not show these data")
                analysis = self.explorer.result.analysis
                show = None
        except Exception as exc:  # every failure becomes an explanation, never a traceback
            title, explanation, hint = explain_error(exc)
            if isinstance(exc, DataError) or title == "This design cannot be simulated":
                title, hint = "These data cannot be analysed", "Check the columns chosen above, or fix the file."
            self._failed(exc, title, hint, explanation=explanation, trace=traceback.format_exc())
            return False
        if show is not None:
            # The comparison's figure is a FigureWidget (ComparePanel uses embed):
            # a view on the page gets the change as a patch, a panel displayed
            # later gets the figure as it is then (lmm_teach/widgets/notebook.py).
            show()
            self.compare_panel.layout.layout.display = None
        self.result, self.error, self.error_traceback = analysis, None, ""
        self.showing = self.explorer is not None
        lmm = analysis.lmm
        head = f"{lmm.n_subjects} subjects, {lmm.n_obs} measurements: {lmm.formula}."
        where = (" The Data, LMM, ANOVA, Compare and Show code tabs now show your data (no truth: these are "
                 "real data)." if self.explorer is not None else "")
        notes = [head + where] + ([] if self.explorer is not None else teaching_notes(analysis))
        self.status.show(notes, title="Analysed")
        return True

    def _failed(self, exc: Exception, title: str, hint: str, *, explanation: str | None = None,
                trace: str = "") -> None:
        """Explain a failed Analyse; the results of earlier data are cleared (alone) or marked (Explorer)."""
        self.error, self.error_traceback = exc, trace
        self._clear_results()
        if self.explorer is not None and self.explorer.result is not None:
            shown = "these data's previous analysis" if self.showing else "the simulated data"
            hint += f" The other tabs still show {shown}, not this try."
        self.status.problem(title, str(exc) if explanation is None else explanation, hint=hint)

    def back_to_simulated(self) -> bool:
        """Inside the Explorer: show the data simulated from the Design controls again."""
        if self.explorer is None:
            return False
        ok = self.explorer.refresh()
        self.showing = False
        if ok:
            self.status.show(["The Explorer shows the data simulated from the Design panel again."],
                             title="Simulated data")
        else:
            title, explanation, hint = explain_error(self.explorer.error)
            self.status.problem(title, explanation, hint=hint)
        return ok

    def explorer_updated(self, result) -> None:
        """The Explorer changed: note when a Design change replaced the learner's data (cheap)."""
        if self.showing and result.design is not None:
            self.showing = False
            self.status.show(["A Design control changed, so the Explorer shows simulated data again. Press "
                              "Analyse to see your data."], title="Simulated data")


def _preview(data: pd.DataFrame, name: str, n: int = 5) -> str:
    """The first rows as an accessible table (text left-aligned, numbers right)."""
    columns = [(c, str(c), None if pd.api.types.is_numeric_dtype(data[c]) else str) for c in data.columns]
    caption = f"{name}: {len(data)} rows, {data.shape[1]} columns (first {min(n, len(data))} rows)"
    return html_table(data.head(n).to_dict(orient="records"), columns, caption=caption, css="lmm-table-preview")


def explorer_tab(explorer) -> OwnDataPanel:
    """The Explorer's "Your own data" tab."""
    return OwnDataPanel(explorer=explorer)
