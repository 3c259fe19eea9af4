"""Few-shot intents: add, classify, remove; persistent; runtime only."""

import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.config import DEFAULT_INTENT_DIR
from edge.errors import InputError
from edge.nlu import FewShotIntentModel, FewShotStore, IntentModel

INVOICE = ["能开发票吗", "发票怎么开", "可以开增值税专用发票吗", "你们开不开票", "发票抬头怎么写",
           "开票要提供什么资料", "能开普票吗", "票据怎么给我们", "开专票要多久", "电子发票有没有"]


@pytest.fixture(scope="module")
def model():
    return IntentModel.load(DEFAULT_INTENT_DIR)


def test_store_round_trip_is_persistent(tmp_path):
    db = tmp_path / "nlu.db"
    store = FewShotStore(db)
    store.add("ask_invoice", INVOICE + ["  ", INVOICE[0]])
    store.close()
    again = FewShotStore(db)
    (intent,) = again.all()
    assert intent.name == "ask_invoice" and intent.examples == INVOICE  # blanks and repeats dropped
    assert again.remove("ask_invoice") and not again.remove("ask_invoice")
    assert FewShotStore(db).all() == []


@pytest.mark.parametrize("name, examples, message", [
    ("", INVOICE, "non-empty"), ("a|b", INVOICE, "no '|'"), ("x", INVOICE[:2], "needs 3-200"),
    ("ask_price", INVOICE, "trained intent"),
])
def test_store_refuses_bad_definitions(name, examples, message):
    with pytest.raises(InputError, match=message):
        FewShotStore(":memory:").add(name, examples, known_labels=["ask_price"])


def test_new_intent_is_recognised_and_trained_ones_kept(model):
    store = FewShotStore(":memory:")
    fewshot = FewShotIntentModel(model, store)
    assert [r.label for r in fewshot.predict(["你们这个多少钱"])] == [model.predict(["你们这个多少钱"])[0].label]
    store.add("ask_invoice", INVOICE)
    assert "ask_invoice" in fewshot.labels
    unseen = ["你们能开发票吗", "发票可以开专票不", "能开票吗", "你们开不开发票"]  # none is an example verbatim
    results = fewshot.predict(unseen + ["你们这个软件多少钱一年", "别再打电话了"])
    assert sum(r.label == "ask_invoice" for r in results[:4]) >= 3, [r.label for r in results]
    assert results[4].label == "ask_price" and results[5].label == "complaint_do_not_call"
    assert 0.0 < results[0].scores["ask_invoice"] <= 1.0
    store.remove("ask_invoice")  # immediate: the next call no longer knows it
    assert fewshot.predict(["你们能开发票吗"])[0].label != "ask_invoice"
    assert "ask_invoice" not in fewshot.labels


def test_cli_add_list_remove(tmp_path):
    examples = tmp_path / "invoice.txt"
    examples.write_text("# invoices\n" + "\n".join(INVOICE) + "\n", encoding="utf-8")
    env = {"SALESBOT_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    result = runner.invoke(cli, ["intent", "add", "ask_invoice", "--examples", str(examples)], env=env)
    assert result.exit_code == 0, result.output
    assert "10 examples" in result.output and "self-check: " in result.output
    result = runner.invoke(cli, ["intent", "list"], env=env)
    assert "few-shot: ask_invoice (10 examples" in result.output
    result = runner.invoke(cli, ["intent", "--json", "你们能开发票吗"], env=env)
    assert '"label": "ask_invoice"' in result.output
    assert runner.invoke(cli, ["intent", "remove", "ask_invoice"], env=env).exit_code == 0
    for command in ("remove", "check"):
        result = runner.invoke(cli, ["intent", command, "ask_invoice"], env=env)
        assert result.exit_code == 1 and "no few-shot intent named 'ask_invoice'" in result.output


def test_self_check_names_the_examples_a_trained_intent_takes(model, tmp_path):
    """Each example is classified with a prototype of the others: the invoice examples come back as the new
    intent, a price question slipped into them goes to the trained ask_price."""
    store = FewShotStore(":memory:")
    store.add("ask_invoice", INVOICE + ["你们这个软件多少钱一年"])
    checks = FewShotIntentModel(model, store).check_examples("ask_invoice")
    assert [c.text for c in checks] == INVOICE + ["你们这个软件多少钱一年"]
    assert checks[-1].label == "ask_price"
    assert sum(c.label == "ask_invoice" for c in checks[:-1]) >= 8, [(c.text, c.label) for c in checks]
    with pytest.raises(InputError, match="no few-shot intent named 'nope'"):
        FewShotIntentModel(model, store).check_examples("nope")


def test_cli_check_lists_the_strays(tmp_path):
    examples = tmp_path / "invoice.txt"
    examples.write_text("\n".join(INVOICE + ["你们这个软件多少钱一年"]) + "\n", encoding="utf-8")
    env = {"SALESBOT_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    assert runner.invoke(cli, ["intent", "add", "ask_invoice", "--examples", str(examples)], env=env).exit_code == 0
    result = runner.invoke(cli, ["intent", "check", "ask_invoice"], env=env)
    assert result.exit_code == 0, result.output
    assert "你们这个软件多少钱一年 -> ask_price" in result.output


def test_fusion_rule_gives_turns_the_classifier_calls_other_some_slack(model):
    """A few-shot match above its own threshold takes a turn the classifier calls "other" when it trails
    the nearest trained centroid by less than OTHER_SLACK; against a trained answer it must beat every
    trained centroid."""
    import numpy as np

    from edge.nlu.fewshot import OTHER_SLACK, _Prototype
    from edge.nlu.intent import IntentResult

    fewshot = FewShotIntentModel(model, FewShotStore(":memory:"))
    assert fewshot.other_slack == OTHER_SLACK == 0.1
    proto = [_Prototype("ask_invoice", np.zeros(1, dtype=np.float32), threshold=0.2)]
    other = IntentResult(model.other_label, 0.9, [model.other_label], {model.other_label: 0.9})
    price = IntentResult("ask_price", 0.6, ["ask_price"], {"ask_price": 0.6})
    fuse = lambda result, sim, near: fewshot._fuse(result, np.array([sim]), proto, near)  # noqa: E731
    assert fuse(other, 0.3, 0.35).labels == ["ask_invoice"]  # trails the nearest trained centroid by 0.05
    assert fuse(other, 0.3, 0.35).score == pytest.approx(0.3)
    assert fuse(other, 0.3, 0.45).label == model.other_label  # trails by 0.15: too far
    assert fuse(other, 0.15, 0.05).label == model.other_label  # below the intent's own threshold
    assert fuse(price, 0.3, 0.35).label == "ask_price"  # a trained answer with a nearer centroid stays
    assert fuse(price, 0.6, 0.5).labels == ["ask_invoice"]  # the prototype beats every trained centroid
    assert fuse(price, 0.3, 0.35).scores["ask_invoice"] == pytest.approx(0.3)
    before = FewShotIntentModel(model, FewShotStore(":memory:"), other_slack=0.0)
    assert before._fuse(other, np.array([0.3]), proto, 0.35).label == model.other_label
    # In the classifier's own (dense) space "other" turns still have to beat the centroids.
    dense = FewShotIntentModel(model, FewShotStore(":memory:"), use_head=False)
    assert dense._fuse(other, np.array([0.3]), proto, 0.35).label == model.other_label
    assert dense._fuse(other, np.array([0.6]), proto, 0.5).label == "ask_invoice"
