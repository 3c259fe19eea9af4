"""The matched dialect benchmark scores every dialect on the same unseen ideas."""

from benchmarks.dialects import matched_ideas
from edge.nlu.labelled import Example


def _idea(family, texts, label="ask_price"):
    return [Example(text, (label,), dialect, family, "t")
            for text, dialect in zip(texts, ("mandarin", "cantonese", "sichuanese")) if text]


def test_an_idea_with_a_trained_row_is_dropped_whole():
    rows = _idea("a", ["一年多少钱", "一年幾多錢", "一年好多钱嘛"]) + _idea("b", ["贵不贵", "贵唔贵", "贵不贵嘛"])
    kept, dropped = matched_ideas(rows, training_texts={"一年几多钱"})  # Traditional in the set, Simplified in training
    assert dropped == ["a"]
    assert [e.text for e in kept] == ["贵不贵", "贵唔贵", "贵不贵嘛"]


def test_an_idea_missing_a_dialect_is_dropped():
    rows = _idea("a", ["一年多少钱", "", "一年好多钱嘛"]) + _idea("b", ["贵不贵", "贵唔贵", "贵不贵嘛"])
    kept, dropped = matched_ideas(rows, training_texts=set())
    assert dropped == ["a"] and len(kept) == 3
