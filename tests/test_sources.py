"""Every code cell of every lesson and every Python file compiles cleanly on the Python running the suite.

Compiling with warnings as errors catches what a newer Python starts to complain about at compile time
(an invalid escape such as ``"\\s"`` is a DeprecationWarning up to 3.11 and a SyntaxWarning that
Jupyter prints into the lesson from 3.12 on).  A *valid* escape is worse: ``f"$\\tau$"`` compiles
silently and shows the learner a TAB and "au".  So the string constants are also read back: a
control character followed by the rest of a LaTeX command (TAB + "au", backspace + "eta", form
feed + "rac", newline + "u") is a LaTeX backslash that needed a raw string.

The suite runs on every supported Python (``make test-pythons``), so this test runs on each of them.
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
NOTEBOOKS = [p for p in NOTEBOOKS if ".ipynb_checkpoints" not in p.parts]
PY_DIRS = ("lmm_teach", "tests", "benchmarks", "binder", ".ci")
PY_FILES = sorted(p for d in PY_DIRS for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)

# LaTeX commands whose backslash a non-raw string turns into a control character: "$\\tau$" is a
# TAB and "au", "\\frac" a form feed and "rac", "\\nu" a newline and "u".
_LATEX = {
    "\a": "alpha approx ast angle arg",
    "\b": "beta bar bf bm boldsymbol big bigl bigr Big binom bullet begin boxed",
    "\f": "frac forall",
    "\n": "nu neq ne not nabla newline notin neg nolimits",
    "\r": "rho right rm rangle rightarrow",
    "\t": "tau theta text textbf textit times tilde to top tfrac triangle",
    "\v": "varepsilon varphi vartheta varsigma vec vee vdots",
}
_EATEN = re.compile("(?:" + "|".join(
    re.escape(c) + "(?:" + "|".join(w[1:] for w in words.split()) + ")" for c, words in _LATEX.items()
) + ")(?![A-Za-z])")


def _cells(path: Path) -> list[tuple[int, str]]:
    from IPython.core.inputtransformer2 import TransformerManager

    nb = nbformat.read(path, as_version=4)
    transform = TransformerManager().transform_cell  # %magics and !shell lines as IPython runs them
    return [(i, transform(c.source)) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _sources() -> list[tuple[str, str]]:
    out = [(f"{p.relative_to(ROOT)} cell {i}", src) for p in NOTEBOOKS for i, src in _cells(p)]
    out += [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in PY_FILES]
    return out


def _compile_strictly(name: str, source: str) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SyntaxWarning / DeprecationWarning at compile time become errors
        compile(source, name, "exec", dont_inherit=True)
        return ast.parse(source, name)


def eaten_backslashes(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of the string constants in which an escape swallowed a LaTeX backslash."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _EATEN.search(node.value):
                found.append((node.lineno, node.value))
    return found


def test_the_sources_are_found():
    names = {p.name for p in NOTEBOOKS}
    assert "01_random_intercepts.ipynb" in names and len(NOTEBOOKS) >= 9
    assert ROOT / "lmm_teach" / "__init__.py" in PY_FILES and Path(__file__) in PY_FILES


@pytest.mark.parametrize("name, source", [pytest.param(n, s, id=n) for n, s in _sources()])
def test_compiles_without_warnings_and_keeps_latex_backslashes(name, source):
    tree = _compile_strictly(name, source)
    bad = eaten_backslashes(tree)
    assert not bad, f"{name}: a backslash escape ate LaTeX (use a raw string r'...'): {bad}"


# The two defects this test exists for, as lesson 01 had them before it used raw f-strings.
_LESSON_01_BEFORE = (
    'explanation = lambda: (f"With $\\tau = {tau:g}$ and "\n'
    '                       f"$\\sigma = {sigma:g}$ the true ICC is ")\n'
)


def test_the_old_lesson_01_cell_fails_on_every_python():
    with pytest.raises(SyntaxError, match="invalid escape sequence"):  # \s
        _compile_strictly("old", _LESSON_01_BEFORE)
    tree = ast.parse(_LESSON_01_BEFORE.replace("\\sigma", "\\\\sigma"))  # only \t left
    assert [text for _, text in eaten_backslashes(tree)] == ["With $" + chr(9) + "au = "]  # a TAB and "au"
    fixed = _LESSON_01_BEFORE.replace('f"', 'rf"')
    assert not eaten_backslashes(_compile_strictly("fixed", fixed))
    assert not eaten_backslashes(ast.parse('print("a\\tb", "\\n", "one\\ntwo", "\\n\\\\nu", "\\tname")'))
    for latex in ("$\\frac{a}{b}$", "$\\nu$", "$\\beta_1$", "$\\rho$", "$\\alpha$", "$\\varepsilon$"):
        assert eaten_backslashes(ast.parse(f'x = "{latex}"')), latex
        assert not eaten_backslashes(ast.parse(f'x = r"{latex}"')), latex
