"""Knowledge search and every SQL path against hostile text: no SQL is built from caller text,
and FTS5 syntax in a question (quotes, NEAR, *, ^, column filters, AND/OR/NOT) is neutralised."""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.kb import KnowledgeBase
from edge.kb.text import fts_query

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = [
    '"', '""', "'", "价格\"", 'NEAR(价格 钉钉, 2)', "价格 NEAR 钉钉", "价* OR 钉*", "^价格", "q_terms: 价格",
    "a_terms:价格 OR q_terms:钉钉", "{q_terms a_terms}: 价格", "价格 AND NOT 钉钉", "- 价格", "+ 价格",
    "'; drop table entries; --", '") OR 1=1 --', "\x00", "价格\x00钉钉", "价" * 100_000, "😀😀 多少钱 😀",
    "\u202e格价\u202c", "\u200f多少钱\u200e", "多少钱\u0301\u0308", "ＮＥＡＲ（价格）", "\\", "%", "_", "[", "*",
    "AND", "OR", "NOT", "NEAR", "rank", "bm25(entries_fts)",
]
SAFE_QUERY = re.compile(r'^"[^"]+"( OR "[^"]+")*$')


@pytest.fixture(scope="module")
def kb():
    return KnowledgeBase.builtin()


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_questions_search_without_error_and_change_nothing(kb, text):
    before = (kb.count(), kb.version)
    hits = kb.search(text, k=3)
    assert all(hit.id and hit.answer for hit in hits)
    assert (kb.count(), kb.version) == before
    safe = fts_query(text, kb.lexicon)
    assert safe is None or SAFE_QUERY.match(safe), safe


def test_fts_syntax_is_text_not_operators(kb):
    """A price question wrapped in FTS5 operators finds what the plain question finds."""
    plain = [hit.id for hit in kb.search("多少钱", k=3)]
    for dressed in ('"多少钱"', "多少钱*", "^多少钱", "q_terms: 多少钱", "NEAR(多少钱)", "多少钱 AND NOT 价格"):
        assert [hit.id for hit in kb.search(dressed, k=3)][:1] == plain[:1], dressed


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_becomes_a_query_fts5_accepts(kb, text):
    safe = fts_query(text, kb.lexicon)
    if safe is None:
        return
    assert SAFE_QUERY.match(safe)
    kb.db.execute("select rowid from entries_fts where entries_fts match ? limit 1", [safe]).fetchall()


@pytest.mark.parametrize("text", HOSTILE[:22], ids=range(22))
def test_hostile_search_text_in_records_dnc_and_audit(tmp_path_factory, text):
    from edge.calls import Records, audit, dnc, query

    db = Records.open(tmp_path_factory.mktemp("records") / "calls.db").db
    dnc.add(db, "13800138000", actor="test", reason="asked")
    tables = set(db.table_names())
    query.list_calls(db, query.CallFilter(search=text, campaign=text, grade=text))
    query.count_calls(db, query.CallFilter(search=text))
    dnc.entries(db, search=text)
    audit.entries(db, prefix=text)
    assert set(db.table_names()) == tables and dnc.count(db) == 1


def test_like_wildcards_in_search_text_are_literal(tmp_path):
    """'%' and '_' typed in a search box match those characters, not everything."""
    from edge.calls import Records, audit, dnc

    db = Records.open(tmp_path / "calls.db").db
    dnc.add(db, "13800138000", actor="test", reason="asked")
    assert audit.entries(db, prefix="dnc.") and not audit.entries(db, prefix="%") and not audit.entries(db, prefix="_")
    assert dnc.entries(db, search="8000") and not dnc.entries(db, search="9999")


# ---- no SQL built from values ------------------------------------------------------------------

REVIEWED = {
    # what an f-string may put into SQL text, per file; each is a constant or a string of '?' marks
    ("edge/calls/audit.py", "where"): "a constant clause 'where action like ?'",
    ("edge/calls/dnc.py", "where"): "a constant clause 'where key like ?'",
    ("edge/calls/export.py", "marks"): "'?,?,...' for an IN list",
    ("edge/calls/leads.py", "', '.join(keys)"): "the fixed column names _lead() returns",
    ("edge/calls/leads.py", "', '.join(('?' for _ in keys))"): "'?' marks",
    ("edge/calls/ledger.py", "TABLE"): "the constant table name",
    ("edge/calls/query.py", "_CALL_COLUMNS"): "constant column list",
    ("edge/calls/query.py", "_FROM"): "constant join",
    ("edge/calls/query.py", "where"): "clauses of constant text, values bound as ?",
    ("edge/calls/query.py", "' and '.join(clauses)"): "clauses of constant text, values bound as ?",
    ("edge/calls/query.py", "marks"): "'?' marks",
    ("edge/calls/query.py", "LIKE_ESCAPE"): "the constant escape clause of edge.storage",
    ("edge/calls/audit.py", "LIKE_ESCAPE"): "the constant escape clause of edge.storage",
    ("edge/calls/dnc.py", "LIKE_ESCAPE"): "the constant escape clause of edge.storage",
    ("edge/calls/retention.py", "marks"): "'?' marks",
    ("edge/calls/handoff.py", "ledger"): "two constant exists() clauses over the ledger's constant table name, or '0, 0'",
    ("edge/calls/handoff.py", "marks"): "'?' marks",
}
SQL_METHODS = {"execute", "executemany", "executescript", "query"}


def _interpolations(paths=None, root: Path = ROOT) -> set[tuple[str, str]]:
    found = set()
    for path in paths or sorted((ROOT / "edge").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        name = path.relative_to(root).as_posix()
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SQL_METHODS and node.args):
                continue
            for sub in ast.walk(node.args[0]):
                if isinstance(sub, ast.FormattedValue):
                    found.add((name, ast.unparse(sub.value)))
                elif isinstance(sub, ast.BinOp) and isinstance(sub.op, (ast.Mod, ast.Add)) and any(
                        isinstance(s, ast.Constant) and isinstance(s.value, str) for s in (sub.left, sub.right)):
                    found.add((name, "string concatenation or %-format: " + ast.unparse(sub)[:60]))
                elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "format":
                    found.add((name, ".format(): " + ast.unparse(sub)[:60]))
    return found


def test_sql_text_holds_only_reviewed_constants():
    """A new f-string, + or .format in SQL fails here until someone checks it binds its values."""
    unreviewed = sorted(_interpolations() - set(REVIEWED))
    assert not unreviewed, f"SQL built from expressions nobody reviewed (bind values with ?): {unreviewed}"


def test_the_sql_scan_sees_an_injection(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("def f(db, name):\n    db.execute(f\"select * from t where name = '{name}'\")\n"
                   "    db.query(\"select * from t where name = '\" + name + \"'\")\n", encoding="utf-8")
    found = {what for _, what in _interpolations([bad], root=tmp_path)}
    assert "name" in found and any(w.startswith("string concatenation") for w in found)


def test_fts5_itself_would_choke_on_raw_caller_text(kb):
    """Why quoting matters: unquoted, these are syntax errors (a 500) or operators (a column filter)."""
    for raw in ('价格"', "NEAR(", "^", "*", "nocol: x"):
        with pytest.raises(sqlite3.OperationalError):
            kb.db.execute("select rowid from entries_fts where entries_fts match ?", [raw]).fetchall()
    kb.db.execute("select rowid from entries_fts where entries_fts match ?", ["q_terms: x"]).fetchall()
