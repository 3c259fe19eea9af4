import pytest

from edge.errors import CorpusError
from edge.nlu.labelled import read_corpus, read_csv
from tests.conftest import CORPUS_DIR

HEADER = "transcript,intent_label,dialect,family\n"


def test_seed_two_column_format_and_compound_labels(write_csv):
    path = write_csv("transcript,intent_label\n多少钱,ask_price\n我要了解定制开发 同时要对接企业微信,ask_feature|ask_integration\n"
                     "查一下收费,查收费方式\n")
    rows = read_csv(path)
    assert [r.labels for r in rows] == [("ask_price",), ("ask_feature", "ask_integration"), ("查收费方式",)]
    assert rows[1].is_compound and rows[0].dialect == "mandarin"
    assert rows[0].source.endswith(":2")


@pytest.mark.parametrize("body, message", [
    (HEADER + "多少钱,ask_price,mandarin,f1\n,ask_price,mandarin,f1\n", ":3: empty transcript"),
    (HEADER + "多少钱,,mandarin,f1\n", ":2: empty intent label"),
    (HEADER + "多少钱,ask_price|,mandarin,f1\n", ":2: empty intent label"),
    (HEADER + "多少钱,ask_price,klingon,f1\n", ":2: dialect 'klingon'"),
    (HEADER + "多少钱,ask_price,mandarin,f1\n多少钱,ask_discount,mandarin,f2\n", ":3: duplicate transcript"),
    (HEADER + "多少钱,ask_price,mandarin\n", ":2: 3 fields, header has 4"),
    ("text,label\n多少钱,ask_price\n", ":1: header lacks column(s)"),
    ("", "empty file"),
    (HEADER, "no labelled rows"),
])
def test_bad_rows_name_file_and_line(write_csv, body, message):
    path = write_csv(body)
    with pytest.raises(CorpusError) as err:
        read_csv(path)
    assert message in str(err.value)
    assert str(path) in str(err.value) or "empty file" in message


def test_unknown_label_against_known_set(write_csv):
    path = write_csv(HEADER + "多少钱,ask_price,mandarin,f1\n打错了,wrong_persn,mandarin,f2\n")
    with pytest.raises(CorpusError, match=r":3: unknown intent label\(s\) \['wrong_persn'\]"):
        read_csv(path, known_labels={"ask_price", "wrong_person"})


def test_gbk_file_is_refused_with_line(write_csv):
    path = write_csv(("transcript,intent_label\n多少钱,ask_price\n").encode("gbk"))
    with pytest.raises(CorpusError, match="not valid UTF-8"):
        read_csv(path)


def test_bom_is_accepted(write_csv):
    path = write_csv("\ufefftranscript,intent_label\n多少钱,ask_price\n".encode("utf-8"))
    assert read_csv(path)[0].labels == ("ask_price",)


def test_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="cannot read"):
        read_csv(tmp_path / "nope.csv")


def test_project_corpus_is_valid_and_large_enough():
    examples = read_corpus([CORPUS_DIR])
    by_label: dict[str, int] = {}
    for e in examples:
        for label in e.labels:
            by_label[label] = by_label.get(label, 0) + 1
    business = [l for l in by_label if l != "other"]
    assert len(business) >= 20
    assert all(by_label[l] >= 150 for l in by_label), by_label
    dialect_share = sum(e.dialect != "mandarin" for e in examples) / len(examples)
    assert dialect_share >= 0.15
    assert sum(e.is_compound for e in examples) >= 100
