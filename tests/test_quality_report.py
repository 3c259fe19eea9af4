"""The quality report's dialect figures: the plain gap, and the gap on the intents every dialect has."""

from edge.nlu.intent import IntentResult
from edge.nlu.labelled import Example
from edge.nlu.report import build


def _turn(text, label, dialect, predicted):
    return (Example(text, (label,), dialect, f"{label}-{text}", "t"),
            IntentResult(predicted, 0.9, [predicted], {predicted: 0.9}))


def test_a_dialect_whose_turns_are_easy_intents_does_not_hide_in_the_shared_gap():
    turns = []
    # Both dialects understood equally well on the intents they share (ask_price: 3 of 4 right) ...
    for i in range(4):
        turns.append(_turn(f"m{i}", "ask_price", "mandarin", "ask_price" if i else "busy"))
        turns.append(_turn(f"s{i}", "ask_price", "sichuanese", "ask_price" if i else "busy"))
        turns.append(_turn(f"b{i}", "busy", "mandarin", "busy"))
        turns.append(_turn(f"t{i}", "busy", "sichuanese", "busy"))
    # ... but only Mandarin has a hard intent, which the plain per-dialect macro-F1 counts against it.
    for i in range(4):
        turns.append(_turn(f"h{i}", "wrong_person", "mandarin", "busy"))
    examples, results = zip(*turns)
    report = build(list(examples), list(results), ["ask_price", "busy", "wrong_person", "other"], "other")
    assert report["dialect_gap"] > 0.2
    shared = report["shared_intents"]
    assert shared["intents"] == ["ask_price", "busy"]
    assert shared["by_dialect"]["mandarin"]["n"] == 8 and shared["by_dialect"]["sichuanese"]["n"] == 8
    assert shared["gap"] == 0.0


def test_the_shared_gap_still_shows_a_dialect_that_is_understood_worse():
    turns = []
    for i in range(4):
        turns.append(_turn(f"m{i}", "ask_price", "mandarin", "ask_price"))
        turns.append(_turn(f"c{i}", "ask_price", "cantonese", "ask_price" if i < 2 else "busy"))
        turns.append(_turn(f"b{i}", "busy", "mandarin", "busy"))
        turns.append(_turn(f"d{i}", "busy", "cantonese", "busy"))
    examples, results = zip(*turns)
    shared = build(list(examples), list(results), ["ask_price", "busy", "other"], "other")["shared_intents"]
    assert shared["gap"] > 0.2
