"""Train-only rows as the built-in ASR hears them (export/heard_rows.py)."""

from edge.asr.text import edit_distance, normalize
from edge.nlu.labelled import Example
from export.heard_rows import FAMILY_SUFFIX, heard_rows, phone_ear


def _row(text, label="ask_price", dialect="cantonese", family="f1"):
    return Example(text, (label,), dialect, family, "test")


def test_only_misheard_new_transcripts_become_rows_with_their_source_labels():
    rows = [_row("几多钱啊"), _row("呢个几多钱"), _row("唔该讲下价钱"),
            _row("听日得唔得", "agree_meeting", family="f2"), _row("有冇试用", "ask_trial", family="f3"),
            _row("方便啊", "confirm_yes", family="f4")]
    heard = {"几多钱啊": "几多钱啊",           # heard right: no new row
             "呢个几多钱": "几多钱啊",          # equals another row: not a new row
             "唔该讲下价钱": "唔该讲下加钱",
             "听日得唔得": "唔该讲下加钱",      # equals a transcript already kept
             "有冇试用": "",                   # nothing heard
             "方便啊": "唔方便啊"}              # a negation gained: says the opposite of its label
    out, counts = heard_rows(rows, lambda text, dialect: heard[text])
    assert out == [("唔该讲下加钱", ("ask_price",), "cantonese", "f1" + FAMILY_SUFFIX)]
    assert counts["rows"] == 6 and counts["misheard"] == 1 and counts["cer"] > 0


def test_the_phone_ear_speaks_and_hears_through_the_built_in_models():
    hear = phone_ear(seed=7)
    for text, dialect in (("你们这个软件多少钱", "mandarin"), ("听日下昼得唔得闲", "cantonese")):
        transcript = hear(text, dialect)
        assert transcript, text
        assert edit_distance(normalize(text), normalize(transcript)) / len(normalize(text)) < 0.6, transcript
