"""Knowledge base: import (CSV, JSONL, Markdown), idempotent versioned re-import, hybrid search, hostile queries."""

import csv
import json

import pytest

from edge.config import DEFAULT_KNOWLEDGE
from edge.errors import KnowledgeError
from edge.kb import KnowledgeBase
from edge.kb.store import MIGRATIONS
from edge.kb.text import fts_query, terms
from tests.conftest import ROOT

CSV_TEXT = "question,answer,tags,source\n多少钱,每人每年1200元。,价格,价目表\n能对接钉钉吗,能，支持钉钉登录。,对接|钉钉,集成说明\n"


@pytest.fixture(scope="module")
def builtin():
    return KnowledgeBase.builtin()


def test_import_csv_jsonl_markdown(tmp_path):
    kb = KnowledgeBase.open(tmp_path / "kb.db")
    (tmp_path / "a.csv").write_text(CSV_TEXT, encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps({"question": "数据安全吗", "answer": "加密存储。", "tags": ["安全"],
                                                  "aliases": ["会泄露吗"]}, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    (tmp_path / "c.md").write_text("# 常见问题\n\n## 可以试用吗？\n标签: 试用\n来源: 手册\n\n可以，免费试用十四天。\n\n"
                                   "## 多久能上线？\n\n当天开通。\n一周完成培训。\n", encoding="utf-8")
    reports = [kb.import_file(tmp_path / name) for name in ("a.csv", "b.jsonl", "c.md")]
    assert [r.added for r in reports] == [2, 1, 2] and [r.version for r in reports] == [1, 2, 3]
    assert kb.count() == 5
    hit = kb.search("试用要钱吗")[0]
    assert hit.question == "可以试用吗？" and hit.tags == ("试用",) and hit.source == "手册"
    assert kb.search("多久能上线")[0].answer == "当天开通。 一周完成培训。"
    assert kb.search("会不会泄露")[0].question == "数据安全吗"


def test_reimport_is_idempotent_and_versioned(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    kb = KnowledgeBase.open(tmp_path / "kb.db")
    first = kb.import_file(path)
    again = kb.import_file(path)
    assert (again.added, again.updated, again.unchanged, again.version) == (0, 0, 2, first.version)
    path.write_text(CSV_TEXT.replace("1200元", "1000元"), encoding="utf-8")
    changed = kb.import_file(path)
    assert (changed.added, changed.updated, changed.version) == (0, 1, first.version + 1)
    assert "1000元" in kb.search("多少钱")[0].answer
    path.write_text(CSV_TEXT.split("\n")[0] + "\n" + CSV_TEXT.split("\n")[1] + "\n", encoding="utf-8")
    pruned = kb.import_file(path, prune=True)
    assert pruned.removed == 1 and kb.count() == 1
    assert kb.search("钉钉") == [] or kb.search("钉钉")[0].question != "能对接钉钉吗"
    assert kb.db["kb_imports"].count == 4


def test_persists_in_wal_mode_with_migrations_recorded(tmp_path):
    path = tmp_path / "kb.db"
    kb = KnowledgeBase.open(path)
    kb.import_file(DEFAULT_KNOWLEDGE)
    kb.close()
    reopened = KnowledgeBase.open(path)
    assert reopened.db.journal_mode == "wal"
    assert [m.name for m in MIGRATIONS.applied(reopened.db)] == ["001_entries", "002_fts"]
    assert MIGRATIONS.pending(reopened.db) == []
    assert reopened.search("多少钱")[0].id == "price-model"


@pytest.mark.parametrize("text, message", [
    ("q,answer\n多少钱,1200\n", "a.csv:1: header lacks ['question']"),
    ("question,answer\n多少钱,\n", "a.csv:2: empty or missing answer"),
    ("question,answer\n多少钱,1200,extra\n", "a.csv:2: 2 fields expected"),
    ("question,answer,id\n多少钱,1200,p1\n贵不贵,不贵,p1\n", "a.csv:3: duplicate id 'p1'"),
    ("question,answer\n多少钱,1200\n多少钱,1300\n", "a.csv:3: duplicate question"),
    ("question,answer,colour\n多少钱,1200,red\n", "unknown column"),
    ('question,answer\n"多少钱,1200\n', "a.csv"),
    ("question,answer\n" + "问" * 400 + ",答\n", "question of 400 characters"),
    ("question,answer\n", "no entries found"),
])
def test_malformed_knowledge_is_refused_whole(tmp_path, text, message):
    kb = KnowledgeBase.open(tmp_path / "kb.db")
    kb.import_file(DEFAULT_KNOWLEDGE)
    before, version = kb.count(), kb.version
    path = tmp_path / "a.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        kb.import_file(path)
    assert (kb.count(), kb.version) == (before, version)


def test_other_bad_files(tmp_path):
    kb = KnowledgeBase.open(None)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(KnowledgeError, match="unknown knowledge format"):
        kb.import_file(tmp_path / "x.txt")
    (tmp_path / "x.csv").write_bytes("question,answer\n多少钱,一千\n".encode("gbk"))
    with pytest.raises(KnowledgeError, match="x.csv:2: not valid UTF-8"):
        kb.import_file(tmp_path / "x.csv")
    (tmp_path / "x.jsonl").write_text('{"question": "a", "answer": "b"}\n{oops\n')
    with pytest.raises(KnowledgeError, match="x.jsonl:2: not a JSON object"):
        kb.import_file(tmp_path / "x.jsonl")
    (tmp_path / "x.md").write_text("stray text\n## 问\n答\n")
    with pytest.raises(KnowledgeError, match="x.md:1: text before the first"):
        kb.import_file(tmp_path / "x.md")
    (tmp_path / "kb.db").write_text("not sqlite" * 100)
    with pytest.raises(KnowledgeError, match="cannot open knowledge base"):
        KnowledgeBase.open(tmp_path / "kb.db")


def test_two_character_words_are_found(builtin):
    assert terms("价格", builtin.lexicon) == ["价格"]
    assert builtin.search("钉钉")[0].id == "integration-dingtalk"
    assert builtin.search("试用")[0].id == "trial-free"


@pytest.mark.parametrize("query", ['" OR 1=1', "价格 NEAR(a b)", "*", "question:价格", "'; DROP TABLE entries; --",
                                   "AND OR NOT", '"""', "价格^2", "{price}", "\x00", "😀" * 50, "a" * 5000, ""])
def test_hostile_queries_are_harmless(builtin, query):
    builtin.search(query)
    safe = fts_query(query, builtin.lexicon)
    assert safe is None or all(part.startswith('"') and part.endswith('"') for part in safe.split(" OR "))
    assert builtin.count() == 45


def test_tags_filter(builtin):
    assert {h.id for h in builtin.search("多少钱", tags=["价格"], k=3)} <= {
        h.id for h in builtin.search("多少钱", k=45) if "价格" in h.tags}
    assert builtin.search("多少钱", tags=["不存在的标签"]) == []


def test_dev_paraphrases_recall(builtin):
    """Regression on the tuning set (tests/data/kb_dev.csv); held-out figures: benchmarks/kb.py."""
    with open(ROOT / "tests" / "data" / "kb_dev.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    ranks = []
    for row in rows:
        ids = [h.id for h in builtin.search(row["question"], k=3)]
        ranks.append(ids.index(row["expected"]) + 1 if row["expected"] in ids else None)
    assert sum(r == 1 for r in ranks) / len(ranks) >= 0.9
    assert sum(r is not None for r in ranks) / len(ranks) >= 0.98
