"""Per-language CTC decoding graphs: what the graph scores (export/asr/graph.py), the runtime's checks of a
graph file (edge/asr/modeldir.py), and decoding under the shipped ones (edge/asr/sherpa_offline.py)."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge import asr
from edge.asr.base import decode_segments
from edge.asr.modeldir import check_graph, inspect
from edge.asr.rescore import Rescorer
from edge.asr.text import cer
from edge.config import DEFAULT_ASR_DIR, AsrConfig
from edge.errors import ModelDirError
from edge.tts.espeak import EspeakSettings, speak
from export.asr import graph
from export.asr.lexicon import build_ngrams

VOCAB = ["你", "好", "号", "们"]
BLANK, NI, HAO, HAO4, MEN = 1, 2, 3, 4, 5  # input labels: token id + 1


@pytest.fixture(scope="module")
def rescorer():
    lm = build_ngrams(["你好", "你们好", "你好你好"])
    return Rescorer({"你": "ni", "好": "hao", "号": "hao", "们": "men"}, lm)


def _cost(fst: graph.Graph, labels: list[int]) -> float:
    """The cheapest path of ``fst`` reading ``labels`` (one per frame) to a final state; inf if none."""

    def closure(costs: dict[int, float]) -> dict[int, float]:  # follow epsilon arcs until nothing improves
        todo = list(costs)
        while todo:
            state = todo.pop()
            for ilabel, _, cost, target in fst.arcs[state]:
                if ilabel == graph.EPSILON and costs[state] + cost < costs.get(target, math.inf):
                    costs[target] = costs[state] + cost
                    todo.append(target)
        return costs

    costs = closure({fst.start: 0.0})
    for label in labels:
        after: dict[int, float] = {}
        for state, so_far in costs.items():
            for ilabel, _, cost, target in fst.arcs[state]:
                if ilabel == label and so_far + cost < after.get(target, math.inf):
                    after[target] = so_far + cost
        costs = closure(after)
    return min((so_far + fst.finals[state] for state, so_far in costs.items()), default=math.inf)


def test_a_seen_sentence_costs_its_n_gram_log_probability_and_bonuses(rescorer):
    fst = graph.build(rescorer, VOCAB, "cmn", scale=0.5, bonus=0.25)
    want = -0.5 * sum(rescorer.logprob(h, c) for h, c in (("^", "你"), ("^你", "好"), ("你好", "$"))) - 2 * 0.25
    assert _cost(fst, [BLANK, NI, NI, BLANK, HAO, BLANK]) == pytest.approx(want, abs=1e-3)


def test_the_n_gram_prefers_the_seen_homophone(rescorer):
    fst = graph.build(rescorer, VOCAB, "cmn", scale=1.0, bonus=0.0)
    assert _cost(fst, [NI, BLANK, HAO]) < _cost(fst, [NI, BLANK, HAO4]) < math.inf


def test_ctc_repeats_collapse_and_a_blank_separates_a_doubled_character(rescorer):
    fst = graph.build(rescorer, VOCAB, "cmn", scale=1.0, bonus=0.0)
    one = _cost(fst, [NI, HAO])
    assert _cost(fst, [NI, NI, HAO, HAO, HAO]) == pytest.approx(one, abs=1e-4)  # repeats are free
    assert _cost(fst, [NI, BLANK, HAO]) == pytest.approx(one, abs=1e-4)
    # 你你 needs a blank between the two 你 and costs another character
    assert _cost(fst, [NI, BLANK, NI, HAO]) > one + 1.0


def test_every_token_can_be_decoded_even_one_the_n_gram_never_saw(rescorer):
    fst = graph.build(rescorer, VOCAB + ["谢"], "cmn", scale=1.0, bonus=0.0)
    assert _cost(fst, [NI, BLANK, 6, BLANK, HAO]) < math.inf


_BUILD_ONE = """
import hashlib, sys, tempfile
from pathlib import Path
from edge.asr.rescore import Rescorer
from export.asr import graph
from export.asr.lexicon import build_ngrams
vocab = [chr(c) for c in range(0x4e00, 0x4e00 + 300)]  # a set of these iterates in another order per seed
rescorer = Rescorer({c: "x" for c in vocab}, build_ngrams([vocab[0] + vocab[1], vocab[2] + vocab[1] + vocab[7]]))
path = Path(tempfile.mkdtemp()) / "graph.fst"
graph.build(rescorer, vocab, "cmn", scale=0.3, bonus=0.3).write(path)
print(hashlib.sha256(path.read_bytes()).hexdigest())
"""


def test_the_same_n_grams_give_the_same_graph_file_whatever_the_hash_seed():
    """Python orders a set of strings by a per-process hash seed; the bundle's graph file (and its sha256 in
    the manifest) must not depend on it."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    digests = {subprocess.run([sys.executable, "-c", _BUILD_ONE], capture_output=True, text=True, check=True, cwd=root,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2", "3")}
    assert len(digests) == 1


def test_n_grams_through_a_character_the_model_cannot_write_are_left_out():
    """The text-only lines may hold characters outside the model's tokens (横竖); the graph skips their n-grams
    and still reads what the model can write."""
    lm = build_ngrams(["你好", "横你好", "你横好", "你们好"])
    fst = graph.build(Rescorer({"你": "ni", "好": "hao", "们": "men"}, lm), VOCAB, "cmn", scale=0.5, bonus=0.25)
    assert _cost(fst, [NI, BLANK, HAO]) < math.inf


def test_a_general_n_gram_mixed_in_prefers_the_words_it_knows(rescorer, tmp_path):
    """The domain texts never had 你号; a word list that has it makes the graph prefer it to 你好, by its weight."""
    from export.asr.general_lm import general_lm

    words = tmp_path / "dict.txt"
    words.write_text("你号 500 n\n你们 300 r\n号外 50 n\n", encoding="utf-8")
    general = graph.General(general_lm(set(VOCAB), min_count=1, path=words), 0.9)
    plain = graph.build(rescorer, VOCAB, "cmn", scale=1.0, bonus=0.0)
    mixed = graph.build(rescorer, VOCAB, "cmn", scale=1.0, bonus=0.0, general=general)
    assert _cost(plain, [NI, BLANK, HAO]) < _cost(plain, [NI, BLANK, HAO4])
    assert _cost(mixed, [NI, BLANK, HAO4]) < _cost(mixed, [NI, BLANK, HAO]) < math.inf
    assert _cost(graph.build(rescorer, VOCAB, "cmn", 1.0, 0.0, graph.General(general.lm, 0.0)),
                 [NI, BLANK, HAO]) == pytest.approx(_cost(plain, [NI, BLANK, HAO]))
    with pytest.raises(ValueError, match="weight"):
        graph.General(general.lm, 1.0)


def test_the_general_word_list_counts_n_grams_inside_words_the_model_can_write(tmp_path):
    from export.asr.general_lm import word_ngram_counts

    words = tmp_path / "dict.txt"
    words.write_text("你好 10 l\n你们 5 r\n好 99 a\n你谢 7 n\nAB超 3 nz\n你们好 2\n", encoding="utf-8")
    counts = word_ngram_counts(words, set(VOCAB), min_count=1)["counts"]
    assert counts[0] == {"你": 17, "好": 12, "们": 7}  # 好 alone, 你谢 and AB超 are not counted
    assert counts[1] == {"你好": 10, "你们": 7, "们好": 2} and counts[2] == {"你们好": 2}
    pruned = word_ngram_counts(words, set(VOCAB), min_count=8)["counts"]
    assert pruned[1] == {"你好": 10} and pruned[2] == {} and pruned[0] == counts[0]  # unigrams all stay
    words.write_text("你好 10 l\n你们\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dict.txt:2"):
        word_ngram_counts(words, set(VOCAB))


def test_jieba_s_dictionary_is_found_where_the_export_installs_it():
    from export.asr.general_lm import jieba_dictionary

    path = jieba_dictionary()
    assert path.name == "dict.txt" and path.stat().st_size > 1_000_000


def test_a_graph_file_is_checked_before_sherpa_onnx_reads_it(rescorer, tmp_path):
    path = tmp_path / "g.fst"
    graph.build(rescorer, VOCAB, "cmn", 1.0, 0.0).write(path)
    check_graph(path, tokens=len(VOCAB) + 1)
    with pytest.raises(ModelDirError, match="labels beyond"):
        check_graph(path, tokens=3)
    data = path.read_bytes()
    (tmp_path / "short.fst").write_bytes(data[:-7])
    (tmp_path / "long.fst").write_bytes(data + b"\0" * 16)
    (tmp_path / "text.fst").write_bytes(b"not a graph at all, just some words")
    with pytest.raises(ModelDirError, match="truncated"):
        check_graph(tmp_path / "short.fst", tokens=5)
    with pytest.raises(ModelDirError, match="after the graph's last state"):
        check_graph(tmp_path / "long.fst", tokens=5)
    with pytest.raises(ModelDirError, match="g.fst|text.fst"):
        check_graph(tmp_path / "text.fst", tokens=5)


def _bundle_with(tmp_path: Path, graphs: dict, listed: bool = True) -> Path:
    bundle = tmp_path / "asr"
    shutil.copytree(DEFAULT_ASR_DIR, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["decoding"] = {"graphs": graphs}
    if not listed:
        for name in graphs.values():
            manifest["files"].pop(name, None)
    (bundle / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return bundle


def test_a_bundle_naming_a_graph_it_does_not_list_is_refused(tmp_path):
    bundle = _bundle_with(tmp_path, {"cmn": "../elsewhere.fst"})
    with pytest.raises(ModelDirError, match="not a file of the bundle"):
        inspect(bundle)


def test_shipped_graphs_are_listed_and_checked():
    model = inspect(DEFAULT_ASR_DIR)
    assert sorted(model.graphs) == ["cmn", "yue"]
    # a guard on the repository's size: the general n-gram's pruning keeps Mandarin's near 10.6 MB (25 MB unpruned)
    assert all(path.parent == DEFAULT_ASR_DIR and path.stat().st_size < 12_000_000 for path in model.graphs.values())
    assert model.manifest["decoding"]["lm_scale"] == model.manifest["metrics"]["graph_tuning"]["lm_scale"]
    assert list(model.manifest["decoding"]["general_ngrams"]) == ["cmn"]
    keep = model.manifest["rescoring"]["settings"]["language_keep_bonus"]
    assert keep == model.manifest["metrics"]["graph_tuning"]["language_keep_bonus"] and sorted(keep) == ["cmn", "yue"]


def test_the_graphs_can_be_switched_off():
    recognizer = asr.open()
    assert recognizer.info["language_graphs"] == ["cmn", "yue"] and recognizer.graphs_loaded == []
    decode_segments(recognizer, [np.zeros(1600, np.int16)], ["yue"])
    assert recognizer.graphs_loaded == ["yue"]
    assert asr.open(AsrConfig(language_graphs=False)).info["language_graphs"] == []


def test_segments_of_each_language_and_of_none_decode_together_in_order():
    recognizer = asr.open()
    texts = [("你们的系统多少钱", "cmn", "cmn"), ("我哋而家唔需要", "yue", "yue"), ("我现在没时间", "cmn", None)]
    segments = [np.concatenate([np.zeros(3200, np.int16), speak(text, EspeakSettings(f"{voice}+m6", 168, 54, 60)),
                                np.zeros(3200, np.int16)]) for text, voice, _ in texts]
    results = decode_segments(recognizer, segments, [language for *_, language in texts])
    assert len(results) == 3
    assert cer([t for t, *_ in texts], [r.text for r in results]) < 0.3, [r.text for r in results]


@pytest.mark.parametrize("language", [None, "cmn"])
def test_a_segment_too_short_for_the_model_alone_in_its_batch_decodes_to_nothing(language):
    (result,) = decode_segments(asr.open(), [np.zeros(800, np.int16)], [language])
    assert result.text == ""


@pytest.mark.parametrize("text, voice, guessed", [("我们现在没有预算", "cmn", "cmn"), ("我哋而家冇预算", "yue", "yue")])
def test_a_turn_of_unknown_language_is_searched_again_under_the_guessed_languages_graph(text, voice, guessed):
    """A call's first turns: greedy first, then the graph of the language their text shows; the greedy text stays
    the raw text the call's language is judged on."""
    segment = np.concatenate([np.zeros(3200, np.int16), speak(text, EspeakSettings(f"{voice}+m7", 168, 54, 60)),
                              np.zeros(3200, np.int16)])
    recognizer = asr.open()
    (unknown,) = decode_segments(recognizer, [segment], [None])
    assert recognizer.graphs_loaded == [guessed]
    (given,) = decode_segments(recognizer, [segment], [guessed])
    (greedy,) = decode_segments(asr.open(AsrConfig(language_graphs=False)), [segment], [None])
    assert unknown.tokens == given.tokens and unknown.raw_text == greedy.raw_text


def test_without_graphs_a_turn_of_unknown_language_is_decoded_once():
    recognizer = asr.open(AsrConfig(language_graphs=False, rescore=False))
    segment = np.concatenate([np.zeros(3200, np.int16), speak("我现在没时间", EspeakSettings("cmn+m6", 168, 54, 60))])
    (result,) = decode_segments(recognizer, [segment], [None])
    assert result.text and result.raw_text is None and recognizer.graphs_loaded == []


def test_greedy_text_is_rescored_without_the_keep_bonuses_tuned_on_searched_text():
    from edge.asr import _rescorer

    model = inspect(DEFAULT_ASR_DIR)
    searched = _rescorer(model, language_graphs=True).settings
    greedy = _rescorer(model, language_graphs=False).settings
    assert searched.language_keep_bonus == model.manifest["rescoring"]["settings"]["language_keep_bonus"] != {}
    assert greedy.language_keep_bonus == {} and greedy.keep_bonus == searched.keep_bonus
