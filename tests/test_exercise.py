"""The self-check exercise widget, driven from plain Python (no browser)."""

from __future__ import annotations

import pytest

from lmm_teach.widgets.exercise import ChoiceExercise, NumberExercise


def classes(widget) -> set[str]:
    return set(widget._dom_classes)


# -- numbers ---------------------------------------------------------------------------

def test_number_right_and_wrong():
    ex = NumberExercise("What is 6 x 7?", 42, tolerance=0, hint="Six sevens.", explanation="6 x 7 = 42.")
    assert ex.check(41) is False
    assert "Not quite" in ex.feedback_text
    assert ex.check(42) is True
    assert "Right" in ex.feedback_text and "6 x 7 = 42." in ex.feedback_text
    assert (ex.attempts, ex.wrong_attempts, ex.solved, ex.last_result) == (2, 1, True, True)


def test_hint_after_a_wrong_try_explanation_only_after_a_right_one():
    ex = NumberExercise("q", 1.0, tolerance=0.1, hint="HINT-TEXT", explanation="WHY-TEXT")
    assert ex.feedback_text == ""
    ex.check(3)
    assert "HINT-TEXT" in ex.feedback_text
    assert "WHY-TEXT" not in ex.feedback_text
    assert "too high" in ex.feedback_text
    ex.check(-3)
    assert "too low" in ex.feedback_text
    ex.check(1)
    assert "WHY-TEXT" in ex.feedback_text and "HINT-TEXT" not in ex.feedback_text


def test_tolerance_is_absolute_and_inclusive():
    ex = NumberExercise("q", 0.30, tolerance=0.01)
    assert ex.check(0.31) is True  # on the boundary
    assert ex.check(0.29) is True
    assert ex.check(0.3101) is False
    assert ex.check(0.2899) is False
    exact = NumberExercise("q", 0.3, tolerance=0)
    assert exact.check(0.1 + 0.2) is True  # binary rounding is not the learner's fault
    assert exact.check(0.3001) is False


def test_learner_typing_is_read_generously():
    ex = NumberExercise("q", 0.42, tolerance=0.005)
    for typed in ["0.42", " .42 ", "0,42", "4.2e-1", "0.4200"]:
        assert ex.check(typed) is True, typed
    assert NumberExercise("q", -1.5, tolerance=0).check("\u22121.5") is True  # a typographic minus


def test_unreadable_input_does_not_count_as_a_try():
    ex = NumberExercise("q", 1.0, tolerance=0.1, hint="HINT-TEXT")
    assert ex.check("about 3 mmHg") is False
    assert "cannot read" in ex.feedback_text and "HINT-TEXT" not in ex.feedback_text
    assert ex.check("") is False
    assert "Type your answer" in ex.feedback_text
    assert (ex.attempts, ex.last_result) == (0, None)
    assert "lmm-exercise-info" in classes(ex.feedback)


def test_the_check_button_judges_the_answer_box():
    ex = NumberExercise("q", 2.5, tolerance=0.05)
    ex.input.value = "2.52"
    ex.button.click()
    assert ex.solved and "Right" in ex.feedback_text
    # check(value) writes into the box, so the notebook shows what was judged
    ex.check(7)
    assert ex.input.value == "7"


def test_callable_answer_is_evaluated_at_check_time():
    data = {"mean": 10.0}
    ex = NumberExercise("The mean of your data?", lambda: data["mean"], tolerance=0.01)
    assert ex.check(10) is True
    data["mean"] = 12.0  # the learner re-simulates: the same question now has another answer
    assert ex.check(10) is False
    assert ex.check(12) is True
    assert ex.solution() == 12.0


def test_callable_answer_that_cannot_be_computed_yet():
    def answer():
        raise NameError("name 'fit' is not defined")

    ex = NumberExercise("q", answer, tolerance=0.1)
    assert ex.check(1) is False
    assert "Run the cells above" in ex.feedback_text and "NameError" in ex.feedback_text
    assert ex.attempts == 0
    nan = NumberExercise("q", lambda: float("nan"), tolerance=0.1)
    assert nan.check(1) is False and "no answer for your current data" in nan.feedback_text


def test_answer_revealed_after_repeated_wrong_tries():
    ex = NumberExercise("q", 0.6123, tolerance=0.005, explanation="WHY-TEXT", reveal_after=3)
    ex.check(1)
    ex.check(1)
    assert "The answer is" not in ex.feedback_text
    ex.check(1)
    assert "The answer is 0.612" in ex.feedback_text and "WHY-TEXT" in ex.feedback_text


def test_hint_and_explanation_may_follow_the_data():
    value = {"icc": 0.25}
    ex = NumberExercise("q", lambda: value["icc"], tolerance=0.01,
                        hint=lambda: f"look near {value['icc'] * 2:.1f}",
                        explanation=lambda: f"the ICC is {value['icc']:.2f}")
    ex.check(0.9)
    assert "look near 0.5" in ex.feedback_text
    ex.check(0.25)
    assert "the ICC is 0.25" in ex.feedback_text


def test_css_classes_are_stable():
    ex = NumberExercise("q", 1, tolerance=0)
    assert "lmm-exercise" in classes(ex.layout)
    assert "lmm-exercise-feedback" in classes(ex.feedback)
    ex.check(2)
    assert "lmm-exercise-wrong" in classes(ex.feedback)
    ex.check(1)
    assert {"lmm-exercise-feedback", "lmm-exercise-right"} <= classes(ex.feedback)
    assert "lmm-exercise-wrong" not in classes(ex.feedback)


def test_displays_as_a_widget():
    bundle = NumberExercise("q", 1, tolerance=0)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


@pytest.mark.parametrize("kwargs", [{"answer": "many"}, {"answer": float("nan")}, {"answer": 1, "tolerance": -1}])
def test_number_exercise_rejects_bad_definitions(kwargs):
    with pytest.raises(ValueError):
        NumberExercise("q", **kwargs)


# -- choices ---------------------------------------------------------------------------

OPTIONS = ["the LMM", "the RM-ANOVA", "both the same"]


def test_choice_right_and_wrong():
    ex = ChoiceExercise("Which uses every observation?", OPTIONS, "the LMM", hint="HINT-TEXT",
                        explanation="WHY-TEXT")
    assert ex.check("the RM-ANOVA") is False
    assert "Not quite" in ex.feedback_text and "HINT-TEXT" in ex.feedback_text
    assert ex.check("the LMM") is True
    assert "WHY-TEXT" in ex.feedback_text
    assert ex.input.value == "the LMM"


def test_choice_feedback_for_a_tempting_option():
    ex = ChoiceExercise("q", OPTIONS, "the LMM",
                        option_feedback={"both the same": "only with complete data"})
    ex.check("both the same")
    assert "only with complete data" in ex.feedback_text
    ex.check("the RM-ANOVA")
    assert "only with complete data" not in ex.feedback_text


def test_choice_with_nothing_chosen():
    ex = ChoiceExercise("q", OPTIONS, "the LMM")
    assert ex.check() is False
    assert "Choose one" in ex.feedback_text and ex.attempts == 0


def test_choice_callable_answer_follows_the_data():
    state = {"sig": True}
    ex = ChoiceExercise("Is the effect significant in your data?", ["yes", "no"],
                        lambda: "yes" if state["sig"] else "no")
    assert ex.check("yes") is True
    state["sig"] = False
    assert ex.check("yes") is False
    assert ex.check("no") is True


def test_choice_answer_revealed_after_two_wrong_tries_by_default():
    ex = ChoiceExercise("q", OPTIONS, "the LMM")
    ex.check("the RM-ANOVA")
    assert "The answer is" not in ex.feedback_text
    ex.check("both the same")
    assert "The answer is \u201cthe LMM\u201d" in ex.feedback_text


def test_choice_rejects_bad_definitions_and_values():
    with pytest.raises(ValueError, match="not one of the options"):
        ChoiceExercise("q", OPTIONS, "neither")
    with pytest.raises(ValueError, match="at least two"):
        ChoiceExercise("q", ["only"], "only")
    with pytest.raises(ValueError, match="option_feedback"):
        ChoiceExercise("q", OPTIONS, "the LMM", option_feedback={"nope": "x"})
    ex = ChoiceExercise("q", OPTIONS, "the LMM")
    with pytest.raises(ValueError, match="not one of the options"):
        ex.check("neither")


def test_layout_holds_question_answer_box_button_and_feedback():
    for ex in (NumberExercise("q", 1, tolerance=0), ChoiceExercise("q", OPTIONS, "the LMM")):
        prompt, controls, feedback = ex.layout.children
        assert prompt is ex.prompt and feedback is ex.feedback
        assert list(controls.children) == [ex.input, ex.button]


# --- answers that a glance at the source does not give away ------------------------------

def test_solution_only_after_tries_or_for_the_teacher(monkeypatch):
    from lmm_teach.widgets.exercise import SolutionLocked

    monkeypatch.delenv("LMM_TEACH_TEACHER", raising=False)
    ex = NumberExercise("What is 2 + 2?", 4, tolerance=0, reveal_after=2)
    with pytest.raises(SolutionLocked, match="2 more wrong tries"):
        ex.solution()
    assert ex.solution(teacher=True) == 4
    ex.check(5)
    with pytest.raises(SolutionLocked, match="1 more wrong try"):
        ex.solution()
    ex.check(6)  # the answer is now shown in the feedback: solution() may say it too
    assert "The answer is" in ex.feedback_text and ex.solution() == 4
    solved = ChoiceExercise("Which is larger?", ["1", "2"], "2")
    solved.check("2")
    assert solved.solution() == "2"
    monkeypatch.setenv("LMM_TEACH_TEACHER", "1")
    assert ChoiceExercise("Which is larger?", ["1", "2"], "2").solution() == "2"


def test_encoded_answers():
    from lmm_teach.widgets.exercise import Encoded, encode

    text = encode("MCAR and MAR")
    assert "MCAR" not in text and "MAR" not in text
    ex = ChoiceExercise("Which?", ["MCAR only", "MCAR and MAR", "all three"], Encoded(text), reveal_after=1)
    assert ex.check("MCAR only") is False and "\u201cMCAR and MAR\u201d" in ex.feedback_text
    assert ex.check("MCAR and MAR") is True
    num = NumberExercise("How many?", Encoded(encode(0.763)), tolerance=0.005)
    assert num.check("0.76") is True and num.check("0.7") is False
    with pytest.raises(ValueError, match="not one of the options"):
        ChoiceExercise("Which?", ["a", "b"], Encoded(encode("c")))
    with pytest.raises(ValueError, match="does not come from"):
        Encoded("MCAR and MAR")
