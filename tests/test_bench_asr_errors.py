"""The ASR error breakdown sorts every edit into one kind, and the kinds add up to the CER."""

from benchmarks.asr_errors import KINDS, breakdown
from edge.asr.text import edit_distance, edits, normalize


def test_edits_are_one_minimal_alignment():
    assert edits("回放吗", "回访") == [("放", "访"), ("吗", "")]
    assert edits("", "好") == [("", "好")] and edits("好", "好") == []
    for ref, hyp in [("贵得很", "对得很"), ("能按月交吗", "能月教吗吗"), ("abc", "cab")]:
        assert len(edits(ref, hyp)) == edit_distance(ref, hyp)


def test_kinds_add_up_to_the_cer(tmp_path):
    (tmp_path / "tokens.txt").write_text("<blk> 0\n回 1\n放 2\n访 3\n吗 4\n贵 5\n对 6\n", encoding="utf-8")
    (tmp_path / "lexicon.tsv").write_text("回\thui\n放\tfaŋ\n访\tfaŋ\n吗\tma\n贵\tkuei\n对\ttuei\n", encoding="utf-8")
    rows = [{"ref": "回放吗", "raw": "回访", "hyp": "回放", "lang": "cmn", "condition": "clean"},
            {"ref": "补贴贵", "raw": "不铁对", "hyp": "不铁对", "lang": "cmn", "condition": "phone"}]
    table, pairs = breakdown(rows, tmp_path, "raw")
    everything = table["all"]
    assert everything["chars"] == 6 and everything["cer"] == round(5 / 6, 4)
    # 放->访 homophone, 吗 deleted, 补 and 贴 outside the vocabulary, 贵->对 a mishearing
    assert everything["homophone"] == round(1 / 6, 4) and everything["deletion"] == round(1 / 6, 4)
    assert everything["outside the vocabulary"] == round(2 / 6, 4)
    assert everything["other substitution"] == round(1 / 6, 4)
    assert abs(sum(everything[k] for k in KINDS) - everything["cer"]) < 1e-3
    assert pairs == {"cmn 放->访": 1}
    assert table["cmn/clean"]["cer"] == round(2 / 3, 4)
    assert breakdown(rows, tmp_path, "hyp")[0]["cmn/clean"]["deletion"] == round(1 / 3, 4)


def test_edits_of_latin_letters_are_counted_apart(tmp_path):
    (tmp_path / "tokens.txt").write_text("<blk> 0\n用 1\nE 2\nX 3\nC 4\nL 5\n表 6\nS 7\n", encoding="utf-8")
    (tmp_path / "lexicon.tsv").write_text("用\tjuŋ\n表\tpiau\n", encoding="utf-8")
    rows = [{"ref": "用EXCEL表", "raw": "用ESL表", "hyp": "用ESL表", "lang": "cmn", "condition": "clean"},
            {"ref": "用表", "raw": "用S表", "hyp": "用S表", "lang": "cmn", "condition": "clean"}]
    everything = breakdown(rows, tmp_path, "raw")[0]["all"]
    # EXCEL -> ESL: three edits, all of Latin letters; the inserted S is one too
    assert everything["in an English word"] == round(4 / 9, 4) and everything["cer"] == round(4 / 9, 4)
    assert everything["deletion"] == 0 and everything["insertion"] == 0


def test_a_part_the_split_lacks_is_refused_before_anything_is_spoken(tmp_path):
    import json

    import pytest

    from benchmarks.asr_errors import main

    split = tmp_path / "split.json"
    split.write_text(json.dumps({"test": [{"text": "你好", "lang": "cmn"}]}), encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["--split", str(split), "--part", "tuning", "--out", str(tmp_path)])
    assert not list(tmp_path.glob("asr_errors*"))


def test_the_english_tuning_lines_are_no_training_or_test_text():
    """export/asr/data/english_tuning.json is for choices about English words: none of its lines may be
    spoken in training or be one of the texts the CER is reported on."""
    import json
    import re
    from pathlib import Path

    from export.asr import texts
    from export.asr.build import CORPUS_DIR

    data = Path(__file__).resolve().parents[1] / "export" / "asr" / "data"
    tuning = json.loads((data / "english_tuning.json").read_text(encoding="utf-8"))["tuning"]
    assert len(tuning) > 200 and all(re.search("[A-Za-z]", t["text"]) and t["lang"] == "cmn" for t in tuning)
    lines = {normalize(t["text"]) for t in tuning}
    assert len(lines) == len(tuning)
    trained = {normalize(u.text) for u in texts.load_corpus(CORPUS_DIR) + texts.load_lines()}
    for path in texts.LM_TEXT_FILES.values():
        trained |= {normalize(line) for line in path.read_text(encoding="utf-8").splitlines()}
    reported = {normalize(t["text"]) for t in json.loads((data / "heldout.json").read_text(encoding="utf-8"))["test"]}
    reported |= {normalize(t["text"]) for t in json.loads((data / "english_dev.json").read_text(encoding="utf-8"))["test"]}
    assert not lines & trained and not lines & reported
