"""Self-check exercises for the lessons: a question, an answer box, a Check button, feedback.

An exercise is judged against the data the learner actually has: ``answer`` may be
a zero-argument callable, evaluated when the learner presses Check, so a question
such as "what is the ICC of your simulated data?" stays right after the learner
re-simulates.

Feedback follows the usual advice for formative self-tests (Shute 2008, "Focus on
formative feedback", Rev. Educ. Res. 78:153): say right or wrong at once, give a
hint rather than the answer after a wrong try, explain after a right one, and reveal
the answer only after several tries so that a stuck learner can go on.

A lesson's source must not give its answers away (a collapsed cell is one
click from the learner): an answer is either computed from the learner's data
(a callable) or written encoded, ``answer=Encoded("...")`` (make the text with
:func:`encode`), and :meth:`Exercise.solution` shows the answer only once the
learner has solved the exercise or had ``reveal_after`` wrong tries, or to a
teacher who asks for it (``solution(teacher=True)``).

The classes are plain ipywidgets (no bokeh) and can be driven from Python:
``exercise.check(value)`` returns True or False and sets the feedback, exactly as
the Check button does.  Stable CSS classes: ``lmm-exercise`` on the whole box,
``lmm-exercise-feedback`` on the feedback, which also carries one of
``lmm-exercise-right``, ``lmm-exercise-wrong`` or ``lmm-exercise-info``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

__all__ = ["Exercise", "NumberExercise", "ChoiceExercise", "Encoded", "encode", "SolutionLocked"]

_UNSET = object()

# Colour is never the only signal: every message also starts with a word and a symbol.  The colour
# marks the border only; the text keeps the theme's colour (readable in light and dark themes).
_STYLE = {
    "right": ("lmm-exercise-right", "#1a7f37", "\u2714 Right."),
    "wrong": ("lmm-exercise-wrong", "#b35900", "\u2718 Not quite."),
    "info": ("lmm-exercise-info", "#444444", "\u2139"),
}


_PREFIX = "lmm1."


def encode(answer) -> str:
    """The text of ``Encoded(...)`` for an answer (a number or a string), for a lesson's source.

    An encoding, not a secret: it keeps a glance at the source from giving the
    answer away, as a folded answer at the back of a textbook does.

    Examples
    --------
    >>> encode("MCAR and MAR")
    'lmm1.IlJBTSBkbmEgUkFDTSI='
    >>> Encoded(encode(0.25)).value
    0.25
    """
    if not isinstance(answer, (str, int, float)) or isinstance(answer, bool):
        raise TypeError(f"encode: an answer is a number or a string, got {type(answer).__name__}")
    return _PREFIX + base64.b64encode(json.dumps(answer)[::-1].encode()).decode()


class Encoded:
    """An answer written encoded in a lesson's source (see :func:`encode`).

    ``ChoiceExercise(q, options, Encoded("lmm1...."))`` and
    ``NumberExercise(q, Encoded("lmm1...."))`` judge against the decoded value.
    """

    def __init__(self, text: str):
        text = str(text)
        if not text.startswith(_PREFIX):
            raise ValueError(f"Encoded: {text!r} does not come from lmm_teach.widgets.exercise.encode")
        try:
            value = json.loads(base64.b64decode(text[len(_PREFIX):].encode()).decode()[::-1])
        except ValueError as exc:
            raise ValueError(f"Encoded: {text!r} is damaged ({exc}); make it again with encode()") from None
        self.text = text
        self._value = value

    @property
    def value(self):
        return self._value

    def __repr__(self) -> str:
        return f"Encoded({self.text!r})"


def _plain(answer):
    """An answer as given: a value, a callable, or an :class:`Encoded` value (decoded)."""
    return answer.value if isinstance(answer, Encoded) else answer


class SolutionLocked(RuntimeError):
    """``solution()`` asked for before the learner tried (the message says what to do)."""


def _text(value: str | Callable[[], str] | None) -> str:
    """A hint or an explanation: a string, or a callable that builds it from the current data."""
    if value is None:
        return ""
    return str(value() if callable(value) else value)


class Exercise:
    """The common part of an exercise: question, input, Check button and feedback.

    Subclasses supply the input widget (``self.input``), ``_read`` (the learner's
    value or a message saying why it cannot be read), ``_judge`` and ``_show``.

    Attributes
    ----------
    attempts : int
        Number of checked answers (unreadable input and unavailable answers do not count).
    solved : bool
        True once a right answer has been checked.
    last_result : bool or None
        The outcome of the last check, None before the first one.
    layout : ipywidgets.VBox
        The widget shown in the notebook (CSS class ``lmm-exercise``).
    """

    def __init__(self, question: str, *, hint=None, explanation=None, reveal_after: int = 3):
        if reveal_after < 1:
            raise ValueError("reveal_after must be at least 1 (the number of wrong tries before the answer shows)")
        self.question = question
        self.hint = hint
        self.explanation = explanation
        self.reveal_after = int(reveal_after)
        self.attempts = 0
        self.wrong_attempts = 0
        self.solved = False
        self.last_result: bool | None = None
        self.prompt = widgets.HTMLMath(question)
        self.button = widgets.Button(description="Check", icon="check", button_style="primary",
                                     tooltip="Check your answer")
        self.feedback = widgets.HTMLMath("")
        self.feedback.add_class("lmm-exercise-feedback")
        self.button.on_click(lambda _button: self.check())
        self.layout = widgets.VBox(
            [self.prompt, self._controls(), self.feedback],
            layout=widgets.Layout(border="1px solid var(--jp-border-color2)", padding="6px 10px", margin="8px 0"),
        )
        self.layout.add_class("lmm-exercise")

    # -- the parts a subclass supplies ------------------------------------------------
    input: widgets.DOMWidget

    def _controls(self) -> widgets.Box:
        """The answer box and the Check button, side by side (a choice puts the button below)."""
        return widgets.HBox([self.input, self.button])

    def _set(self, value) -> None:
        raise NotImplementedError

    def _read(self) -> tuple[Any, str | None]:
        """Return (value, None) or (None, message explaining why the input cannot be judged)."""
        raise NotImplementedError

    def _expected(self) -> Any:
        raise NotImplementedError

    def _judge(self, value, expected) -> tuple[bool, str]:
        """Return (right, extra feedback for this particular answer)."""
        raise NotImplementedError

    def _show(self, expected) -> str:
        raise NotImplementedError

    # -- the public behaviour ---------------------------------------------------------
    @property
    def revealed(self) -> bool:
        """Whether the learner may see the answer: solved, or ``reveal_after`` wrong tries."""
        return self.solved or self.wrong_attempts >= self.reveal_after

    def solution(self, *, teacher: bool = False) -> Any:
        """The right answer now (a callable answer is evaluated against the current data).

        Only once the exercise is solved or the answer was shown after
        ``reveal_after`` wrong tries; before that, ``teacher=True`` (for the one
        preparing the class) or the environment variable
        ``LMM_TEACH_TEACHER=1``.

        Raises
        ------
        SolutionLocked
            Before that, with a message saying how many tries are left.
        """
        import os

        if not (teacher or self.revealed or os.environ.get("LMM_TEACH_TEACHER") == "1"):
            left = self.reveal_after - self.wrong_attempts
            raise SolutionLocked(
                f"Try the exercise first: type an answer and press Check. The answer is shown after "
                f"{left} more wrong tr{'y' if left == 1 else 'ies'}, with a hint after each. (Teachers: "
                "solution(teacher=True).)")
        return self._expected()

    def check(self, value=_UNSET) -> bool:
        """Judge ``value`` (or, without it, what is in the answer box) and show the feedback.

        Returns True for a right answer and False otherwise, including when the
        input cannot be read or the answer cannot be computed yet (then the
        feedback says why and the try does not count).
        """
        if value is not _UNSET:
            self._set(value)
        given, problem = self._read()
        if problem is not None:
            return self._info(problem)
        try:
            expected = self._expected()
        except Exception as exc:  # the learner's data may not exist yet: say so, do not crash the button
            return self._info(
                "This answer is computed from your data, which is not available yet "
                f"({type(exc).__name__}: {html.escape(str(exc))}). Run the cells above this one, then check again."
            )
        if expected is None:
            return self._info("There is no answer for your current data. Run the cells above this one again.")
        right, extra = self._judge(given, expected)
        self.attempts += 1
        self.last_result = right
        if right:
            self.solved = True
            parts = [extra, _text(self.explanation)]
            self._render("right", parts)
        else:
            self.wrong_attempts += 1
            parts = [extra]
            if self.hint is not None:
                parts.append(f"<b>Hint:</b> {_text(self.hint)}")
            if self.wrong_attempts >= self.reveal_after:
                parts.append(f"<b>The answer is</b> {self._show(expected)}.")
                parts.append(_text(self.explanation))
            self._render("wrong", parts)
        return right

    def _info(self, message: str) -> bool:
        self.last_result = None
        self._render("info", [message])
        return False

    def _render(self, kind: str, parts: Sequence[str]) -> None:
        css, colour, head = _STYLE[kind]
        for other, _, _ in _STYLE.values():
            self.feedback.remove_class(other)
        self.feedback.add_class(css)
        body = " ".join(p for p in parts if p)
        self.feedback.value = (f'<div style="border-left:4px solid {colour};padding:2px 8px;'
                               f'color:var(--jp-content-font-color1)"><b>{head}</b> {body}</div>')

    @property
    def feedback_text(self) -> str:
        """The feedback as shown, without HTML tags (handy in tests and plain Python)."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.feedback.value)).strip()

    def _repr_mimebundle_(self, **kwargs):
        return self.layout._repr_mimebundle_(**kwargs)


def _parse_number(text) -> float | None:
    """Read what a learner typed: 0.42, .42, 0,42 (decimal comma), 1e-3, -1.5, '  3 '."""
    if isinstance(text, numbers.Real) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().replace("\u2212", "-").replace(" ", "")
        if s.count(",") == 1 and "." not in s:
            s = s.replace(",", ".")
        try:
            value = float(s)
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def _decimals(tolerance: float) -> int:
    """Enough decimals to show an answer to the precision the tolerance asks for."""
    if tolerance <= 0:
        return 6
    return min(8, max(0, -math.floor(math.log10(tolerance))))


class NumberExercise(Exercise):
    """An exercise whose answer is a number, judged within a tolerance.

    Parameters
    ----------
    question : str
        The question, as HTML (``$...$`` renders as LaTeX).
    answer : float, Encoded or callable
        The right answer (``Encoded(...)``: see :func:`encode`), or a
        zero-argument callable returning it when the learner checks (so that
        it follows the learner's current data).
    tolerance : float
        Largest accepted absolute difference |given - answer|; e.g. 0.005 for
        "to two decimals".  Must be >= 0.
    hint : str or callable, optional
        Shown after a wrong answer.
    explanation : str or callable, optional
        Shown after a right answer (and with the answer after ``reveal_after`` wrong tries).
    reveal_after : int
        Number of wrong tries after which the answer is shown.

    Examples
    --------
    >>> ex = NumberExercise("What is 2 + 2?", 4, tolerance=0, hint="Count.")
    >>> ex.check(5), ex.check("4")
    (False, True)
    """

    def __init__(self, question: str, answer, *, tolerance: float = 0.01, hint=None, explanation=None,
                 reveal_after: int = 3, placeholder: str = "a number, e.g. 0.42"):
        tolerance = float(tolerance)
        if not math.isfinite(tolerance) or tolerance < 0:
            raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
        if not callable(answer) and _parse_number(_plain(answer)) is None:
            raise ValueError(f"answer must be a finite number, an Encoded number or a zero-argument callable, "
                             f"got {answer!r}")
        self.answer = answer
        self.tolerance = tolerance
        self.input = widgets.Text(value="", placeholder=placeholder, layout=widgets.Layout(width="14em"))
        super().__init__(question, hint=hint, explanation=explanation, reveal_after=reveal_after)

    def _set(self, value) -> None:
        self.input.value = "" if value is None else str(value)

    def _read(self):
        raw = self.input.value
        if not str(raw).strip():
            return None, "Type your answer in the box first."
        value = _parse_number(raw)
        if value is None:
            return None, (f"I cannot read \u201c{html.escape(str(raw))}\u201d as a number: type digits only, "
                          "for example 0.42 or -1.5 (no units).")
        return value, None

    def _expected(self):
        value = self.answer() if callable(self.answer) else _plain(self.answer)
        if value is None:
            return None
        number = _parse_number(value)
        return number  # None (NaN, infinite, not a number) means "no answer for these data"

    def _judge(self, value, expected):
        # The small slack absorbs binary rounding: 0.1 + 0.2 is accepted for 0.3 at tolerance 0.
        slack = 1e-9 * max(1.0, abs(expected))
        if abs(value - expected) <= self.tolerance + slack:
            return True, ""
        return False, "Your answer is too high." if value > expected else "Your answer is too low."

    def _show(self, expected) -> str:
        if self.tolerance == 0:
            return f"{expected:.6g}"
        return f"{expected:.{_decimals(self.tolerance)}f}"


class ChoiceExercise(Exercise):
    """An exercise with one right option among several.

    Parameters
    ----------
    question : str
        The question, as HTML (``$...$`` renders as LaTeX).
    options : sequence of str
        The options, shown as radio buttons in this order.
    answer : str, Encoded or callable
        The right option (one of ``options``; in a lesson, ``Encoded(...)`` so
        that the source does not show it), or a zero-argument callable
        returning it when the learner checks.
    hint, explanation, reveal_after
        As for :class:`NumberExercise`.
    option_feedback : mapping, optional
        Feedback for particular options, shown when that option is checked;
        use it to address the misconception behind a tempting wrong option.

    Examples
    --------
    >>> ex = ChoiceExercise("Which is larger?", ["1", "2"], "2")
    >>> ex.check("1"), ex.check("2")
    (False, True)
    """

    def __init__(self, question: str, options: Sequence[str], answer, *, hint=None, explanation=None,
                 reveal_after: int = 2, option_feedback: Mapping[str, str] | None = None):
        options = [str(o) for o in options]
        if len(options) < 2:
            raise ValueError("a choice exercise needs at least two options")
        if len(set(options)) != len(options):
            raise ValueError(f"the options must differ from each other: {options}")
        if not callable(answer) and str(_plain(answer)) not in options:
            raise ValueError(f"answer {answer!r} is not one of the options {options}")
        unknown = set(option_feedback or {}) - set(options)
        if unknown:
            raise ValueError(f"option_feedback names options that do not exist: {sorted(unknown)}")
        self.options = tuple(options)
        self.answer = answer
        self.option_feedback = dict(option_feedback or {})
        self.input = widgets.RadioButtons(options=options, value=None, layout=widgets.Layout(width="auto"))
        super().__init__(question, hint=hint, explanation=explanation, reveal_after=reveal_after)

    def _controls(self) -> widgets.Box:
        # Options can be whole sentences: a button beside them would squeeze or cover them.
        return widgets.VBox([self.input, self.button])

    def _set(self, value) -> None:
        if value is not None and str(value) not in self.options:
            raise ValueError(f"{value!r} is not one of the options {list(self.options)}")
        self.input.value = None if value is None else str(value)

    def _read(self):
        if self.input.value is None:
            return None, "Choose one of the options first."
        return self.input.value, None

    def _expected(self):
        value = self.answer() if callable(self.answer) else _plain(self.answer)
        if value is None:
            return None
        if str(value) not in self.options:
            raise ValueError(f"the computed answer {value!r} is not one of the options")
        return str(value)

    def _judge(self, value, expected):
        return value == expected, _text(self.option_feedback.get(value))

    def _show(self, expected) -> str:
        return f"\u201c{html.escape(expected)}\u201d"
