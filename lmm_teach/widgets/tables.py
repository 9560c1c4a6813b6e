"""Result tables as accessible HTML (``<table>`` with a caption and header cells).

Pure functions from result objects to strings: the panels put them in
``ipywidgets.HTML``; tests read them without a browser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from lmm_teach.plots.estimates import generic_component, generic_term
from lmm_teach.widgets.base import escape

__all__ = [
    "fmt", "fmt_p", "html_table", "fixed_table", "variance_table", "random_tests_table",
    "anova_table", "sphericity_table", "cell_means_table", "comparison_table",
]

_TABLE_STYLE = ("border-collapse:collapse;font-size:12px;margin:4px 0 8px 0;"
                "font-variant-numeric:tabular-nums")
# line-height: Notebook 7 gives widget HTML a tall line; tables stay compact.
_CELL = "padding:2px 5px;border-bottom:1px solid var(--jp-border-color2);text-align:right;line-height:1.3"
_HEAD = ("padding:2px 5px;border-bottom:2px solid var(--jp-border-color1);text-align:right;line-height:1.3;"
         "vertical-align:bottom")


def fmt(x, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; blank for NaN or None."""
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, str):
        return x
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not np.isfinite(v):
        return ""
    if float(v).is_integer() and abs(v) < 1e6:
        return f"{int(v)}"
    if abs(v) < 1e-3:
        return f"{v:.2e}"
    # '#' keeps trailing zeros (3.996 -> "4.00", not "4", which reads as exact)
    text = f"{v:#.{digits}g}"
    return text[:-1] if text.endswith(".") else text


def fmt_p(p) -> str:
    """A p-value as a paper would print it: ``0.042``, ``< 0.001``."""
    try:
        v = float(p)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(v):
        return ""
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def html_table(rows: Sequence[Mapping], columns: Sequence[tuple[str, str, Callable | None]], *,
               caption: str = "", css: str = "") -> str:
    """An HTML table: ``columns`` are ``(key, header, formatter)``; the first column is the row header."""
    head = "".join(
        f"<th scope='col' style='{_HEAD}{';text-align:left' if i == 0 or f is str else ''}'>{escape(h)}</th>"
        for i, (_, h, f) in enumerate(columns))
    body = []
    for row in rows:
        cells = []
        for i, (key, _, f) in enumerate(columns):
            value = row.get(key)
            text = escape((f or fmt)(value))
            align = ";text-align:left" if f is str else ""  # text left, numbers right
            if i == 0:
                cells.append(f"<th scope='row' style='{_CELL};text-align:left;font-weight:normal'>{text}</th>")
            else:
                cells.append(f"<td style='{_CELL}{align}'>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = (f"<caption style='caption-side:top;text-align:left;font-weight:bold;padding:2px 0'>"
           f"{escape(caption)}</caption>") if caption else ""
    cls = "lmm-table" + (f" {css}" if css else "")
    return (f"<table class='{cls}' style='{_TABLE_STYLE}'>{cap}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict(orient="records")


def fixed_table(lmm, *, truth: Mapping | None = None) -> str:
    """Fixed effects: estimate, SE, df (Satterthwaite or Kenward-Roger, as fitted), t, p, 95 % CI (and the truth)."""
    rows = []
    for term, r in lmm.fixed.iterrows():
        row = dict(r)
        row["term"] = term
        row["ci"] = f"{fmt(r['ci_low'])} to {fmt(r['ci_high'])}"
        if truth:
            row["truth"] = truth.get(generic_term(term, lmm.columns), np.nan)
        rows.append(row)
    cols = [("term", "term", None), ("estimate", "estimate", None), ("se", "SE", None),
            ("df", f"df ({getattr(lmm, 'ddf', 'Satterthwaite')})", lambda v: fmt(v, 4)),
            ("t", "t", None), ("p", "p", fmt_p),
            ("ci", "95 % CI", str)]
    if truth:
        cols.append(("truth", "truth", None))
    return html_table(rows, cols, caption=f"Fixed effects ({lmm.method}; {lmm.formula})", css="lmm-table-fixed")


def variance_table(lmm, *, truth: Mapping | None = None) -> str:
    """Variance components as ``VarCorr``: variance and SD (correlation for a covariance row)."""
    rows = []
    for r in _records(lmm.variance):
        var2 = r.get("var2")
        is_cov = isinstance(var2, str) and var2 != ""
        name = r["group"]
        what = "residual" if name == "Residual" else (
            f"corr({r['var1']}, {var2})" if is_cov else str(r.get("var1") or ""))
        row = {"group": name, "what": what, "vcov": r["vcov"], "sdcor": r["sdcor"]}
        if truth:
            comp = None if is_cov else generic_component(name, r.get("var1"), lmm.columns)
            row["truth"] = truth.get(comp, np.nan) if comp else truth.get("corr", np.nan) if is_cov else np.nan
        rows.append(row)
    cols = [("group", "group", str), ("what", "term", str), ("vcov", "variance (cov)", None),
            ("sdcor", "SD (corr)", None)]
    if truth:
        cols.append(("truth", "true SD (corr)", None))
    caption = "Variance components"
    if lmm.icc is not None and np.isfinite(lmm.icc):
        caption += f"; ICC = {lmm.icc:.3f} (share of the variance between subjects"
        caption += f"; truth {truth['icc']:.3f})" if truth and "icc" in truth else ")"
    return html_table(rows, cols, caption=caption, css="lmm-table-variance")


def random_tests_table(lmm) -> str:
    """The likelihood-ratio test for each random term (as ``lmerTest::ranova``)."""
    rows = _records(lmm.random_tests)
    cols = [("term", "model", str), ("loglik", "log-likelihood", lambda v: fmt(v, 6)),
            ("LRT", "LRT", None), ("df", "df", None), ("p", "p", fmt_p)]
    return html_table(rows, cols, caption="Does each random term matter? (likelihood-ratio test, as ranova)",
                      css="lmm-table-ranova")


def anova_table(anova) -> str:
    """The F tests of the RM-ANOVA, uncorrected."""
    cols = [("effect", "effect", str), ("F", "F", None), ("df_num", "df", None), ("df_den", "df error", None),
            ("p", "p", fmt_p), ("ges", "generalised eta²", None)]
    return html_table(_records(anova.table), cols, caption="Repeated-measures ANOVA (type III, as afex::aov_ez)",
                      css="lmm-table-anova")


def sphericity_table(anova) -> str:
    """Mauchly's test and the Greenhouse-Geisser / Huynh-Feldt corrected p-values (within effects)."""
    within = anova.table[anova.table["eps_gg"].notna()]
    cols = [("effect", "effect", str), ("mauchly_w", "Mauchly W", None), ("mauchly_p", "p (Mauchly)", fmt_p),
            ("eps_gg", "ε GG", None), ("p_gg", "p (GG)", fmt_p), ("eps_hf", "ε HF", None),
            ("p_hf", "p (HF)", fmt_p)]
    return html_table(_records(within), cols, caption="Sphericity: Mauchly's test and corrected p-values",
                      css="lmm-table-sphericity")


def cell_means_table(anova) -> str:
    """The visit means of the complete cases."""
    means = anova.cell_means
    between = anova.columns.between if anova.columns is not None else None
    visit = anova.columns.visit if anova.columns is not None else "visit"
    cols = []
    if between and between in means.columns:
        cols.append((between, between, str))
    cols += [(visit, visit, str), ("mean", "mean", None), ("sd", "SD", None), ("n", "subjects", None)]
    if "mean_time" in means.columns:
        cols.insert(2 if between else 1, ("mean_time", "mean time", None))
    return html_table(_records(means), cols, caption="Visit means of the complete cases", css="lmm-table-means")


def comparison_table(comparison: pd.DataFrame) -> str:
    """Every method side by side: one block of rows per hypothesis (its question and its estimand in
    words), one row per method (its short label from the registry, found by the ``analysis`` key)."""
    from lmm_teach.methods import HYPOTHESES, METHODS

    has_truth = "truth" in comparison.columns and comparison["truth"].notna().any()
    cols = [("method", "method", str), ("estimate", "estimate", None), ("se", "SE", None),
            ("test", "test", str), ("p_show", "p", str), ("n_subjects", "subjects", None),
            ("n_obs", "obs.", None)]
    if has_truth:
        cols.append(("truth", "truth", None))
    head = "".join(
        f"<th scope='col' style='{_HEAD}{';text-align:left' if f is str else ''}'>{escape(h)}</th>"
        for _, h, f in cols)
    body = []
    nowrap = ";white-space:nowrap"
    for hyp, rows in comparison.groupby("hypothesis", sort=False):
        h = HYPOTHESES.get(hyp)
        question = h.question if h is not None else ""
        estimand = str(rows["estimand"].iloc[0]) if "estimand" in rows.columns else ""
        body.append(f"<tr><th scope='rowgroup' colspan='{len(cols)}' style='{_CELL};text-align:left;"
                    "background:var(--jp-layout-color2);color:var(--jp-content-font-color1)'>"
                    f"{escape(hyp)}{': ' + escape(question) if question else ''}"
                    + (f"<br><span style='font-weight:normal'>estimate: {escape(estimand)}</span>" if estimand else "")
                    + "</th></tr>")
        for r in _records(rows):
            stat, val = r.get("statistic") or "", fmt(r.get("value"))
            dfs = ", ".join(x for x in (fmt(r.get("df_num"), 3), fmt(r.get("df_den"), 3)) if x)
            test = f"{stat}({dfs}) = {val}" if val else ""
            p_show = fmt_p(r.get("p")) + (" (GG)" if fmt_p(r.get("p_gg")) else "")
            m = METHODS.get(str(r.get("analysis")))
            method = m.short if m is not None else str(r["method"])
            values = {**r, "method": method, "test": test, "p_show": p_show}
            cells = [f"<th scope='row' style='{_CELL};text-align:left;font-weight:normal{nowrap}'>"
                     f"{escape(values['method'])}</th>"]
            for key, _, f in cols[1:]:
                align = ";text-align:left" if f is str else ""
                cells.append(f"<td style='{_CELL}{align}{nowrap}'>{escape((f or fmt)(values.get(key)))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class='lmm-table lmm-table-compare' style='{_TABLE_STYLE}'>"
            "<caption style='caption-side:top;text-align:left;font-weight:bold;padding:2px 0'>"
            "The same questions, every method (RM-ANOVA: complete cases only)</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
