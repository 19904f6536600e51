"""Multiple-choice quizzes with feedback; the answer key is stored as hashes, not as text.

``quiz("00")`` shows lesson 00's questions. A student's choice is checked by hashing
it with the question id and comparing with the stored hash, so the notebook (and this
file) carry no readable answer key; the explanation appears once the right answer is
chosen.
"""

from __future__ import annotations

import hashlib

__all__ = ["QUIZZES", "quiz", "answer_hash", "is_correct"]


def answer_hash(question_id: str, choice: str) -> str:
    return hashlib.sha256(f"interp-course|{question_id}|{choice}".encode()).hexdigest()[:16]


# lesson -> list of (question id, question, options, hash of the right option, explanation)
QUIZZES: dict[str, list[tuple[str, str, list[str], str, str]]] = {
    "00": [
        (
            "00-q1",
            "A chatbot is judged intelligent because, in a blind conversation, judges cannot tell it from a person.",
            ["thinking humanly", "acting humanly", "thinking rationally", "acting rationally"],
            "04aaa71f992e657b",
            "The Turing test judges behaviour against humans: acting humanly.",
        ),
        (
            "00-q2",
            "A program proves theorems by applying the rules of formal logic, one valid inference at a time.",
            ["thinking humanly", "acting humanly", "thinking rationally", "acting rationally"],
            "4d0f2fb3c3859ce4",
            "Correct inference by the 'laws of thought': thinking rationally.",
        ),
        (
            "00-q3",
            "A model of human memory is judged by whether it makes the same errors, with the same reaction times, as people in experiments.",
            ["thinking humanly", "acting humanly", "thinking rationally", "acting rationally"],
            "01dcd5466379e135",
            "Cognitive modelling compares the internal process with human minds: thinking humanly.",
        ),
        (
            "00-q4",
            "A route planner picks whichever route maximises the expected arrival-on-time, whatever a human driver would do.",
            ["thinking humanly", "acting humanly", "thinking rationally", "acting rationally"],
            "ca359311c3795d78",
            "A rational agent acts to maximise its expected performance: acting rationally (Russell & Norvig's 'standard model').",
        ),
        (
            "00-q5",
            "A digit classifier scores 99 % on its test set. What does that tell us about how it decides?",
            [
                "that it reads the strokes as a person would",
                "nothing by itself: other features could give the same score",
                "that it cannot be fooled by small changes",
            ],
            "5f2a0031e6d69acd",
            "Accuracy measures outcomes, not reasons; lessons 02-10 show models that score well for reasons no person would accept.",
        ),
    ],
}


def is_correct(question_id: str, choice: str, key: str) -> bool:
    return answer_hash(question_id, choice) == key


def quiz(lesson: str):
    """An ipywidgets quiz for ``lesson`` (silent: feedback is written into the widgets)."""
    import ipywidgets as W

    if lesson not in QUIZZES:
        raise ValueError(f"no quiz for lesson {lesson!r}; quizzes: {', '.join(QUIZZES)}")
    boxes = []
    for qid, question, options, key, explanation in QUIZZES[lesson]:
        choice = W.RadioButtons(options=options, value=None, layout=W.Layout(width="auto"))
        feedback = W.HTML("")

        def check(change, qid=qid, key=key, explanation=explanation, feedback=feedback):
            if change["new"] is None:
                return
            if is_correct(qid, change["new"], key):
                feedback.value = f"<b style='color:#1a7f37'>Right.</b> {explanation}"
            else:
                feedback.value = "<b style='color:#b35900'>Not quite</b> - think about which axis it tests: thought or behaviour; human or ideal."

        choice.observe(check, names="value")
        boxes.append(W.VBox([W.HTML(f"<b>{question}</b>"), choice, feedback]))
    return W.VBox(boxes)
