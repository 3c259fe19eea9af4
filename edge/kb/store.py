"""The knowledge base: SQLite through sqlite-utils, FTS5 over character
bigrams fused with n-gram vectors by reciprocal rank fusion.

Example:
    >>> kb = KnowledgeBase.open("kb.db")
    >>> kb.import_file("edge/data/knowledge.csv").added > 0
    True
    >>> kb.search("你们这个几多钱", tags=["价格"])[0].question
    '产品怎么收费？'
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Final, Sequence

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from edge.config import DEFAULT_KNOWLEDGE
from edge.errors import KnowledgeError
from edge.storage import open_database
from edge.kb import importers
from edge.kb.importers import Entry
from edge.kb.text import fts_query, ngrams, terms
from edge.kb.vectors import NgramIndex
from edge.nlu import lexicon as _lexicon

_LOGGER = logging.getLogger(__name__)

CANDIDATES: Final = 50
"""Results taken from each retriever before fusion."""
MAX_QUERY_CHARS: Final = 300
COMMON_TERM_SHARE: Final = 0.1
COMMON_TERM_MIN_ROWS: Final = 200
"""A term in more than max(200, 10% of entries) is left out of FTS queries."""
TEXT_WEIGHT: Final = 0.5
"""Weight of the FTS5 ranking in the fusion (the vector ranking has 1); 0.5 was best on
the tuning questions (tests/data/kb_dev.csv), equal weights cost one question in 53 at rank 1."""
QUESTION_WEIGHT: Final = 2
"""The question (and aliases) count this many times against the answer in the vectors."""
MIGRATIONS: Final = Migrations("kb")
RETRIEVERS: Final = ("text", "vector")


@MIGRATIONS(name="001_entries")
def _entries(db: Database) -> None:
    db["entries"].create({"id": str, "question": str, "aliases": str, "answer": str, "tags": str, "source": str,
                          "origin": str, "q_terms": str, "a_terms": str, "digest": str, "updated_at": str}, pk="id")
    db["entries"].create_index(["origin"])
    db["kb_imports"].create({"id": int, "file": str, "sha256": str, "added": int, "updated": int, "unchanged": int,
                             "removed": int, "version": int, "at": str}, pk="id")
    db["kb_meta"].create({"key": str, "value": str}, pk="key")
    db["kb_meta"].insert({"key": "version", "value": "0"})


@MIGRATIONS(name="002_fts", transactional=False)
def _fts(db: Database) -> None:
    # enable_fts runs scripts (which commit), so this step is written to be
    # safe to re-run instead of transactional: replace=True is a no-op when
    # the index already exists as configured.
    db["entries"].enable_fts(["q_terms", "a_terms"], create_triggers=True, replace=True)
    db.execute("INSERT INTO entries_fts(entries_fts, rank) VALUES('rank', 'bm25(4.0, 1.0)')")


@dataclass(frozen=True)
class Hit:
    """One search result."""

    id: str
    question: str
    answer: str
    tags: tuple[str, ...]
    source: str
    score: float
    """Fused score: sum of 1 / (rrf_k + rank) over the retrievers that found it."""
    text_rank: int | None
    """1-based rank in the FTS5 results, None if not there."""
    vector_score: float
    """Cosine similarity of the n-gram vectors."""


@dataclass(frozen=True)
class ImportReport:
    file: str
    added: int
    updated: int
    unchanged: int
    removed: int
    version: int
    """Knowledge base version after the import (bumped only when something changed)."""


class KnowledgeBase:
    """Questions and answers in SQLite, searchable by meaning-ish and by words."""

    def __init__(self, db: Database, lexicon: _lexicon.Lexicon | None = None, rrf_k: int = 60):
        self.db = db
        self.lexicon = lexicon or _lexicon.load()
        self.rrf_k = rrf_k
        self._loaded_version: int | None = None
        self._entries: list[dict] = []
        self._index: NgramIndex | None = None
        self._by_id: dict[str, int] = {}
        self._common: frozenset[str] = frozenset()
        self._search_sql = ""

    @classmethod
    def open(cls, path: str | Path | None = None, lexicon: _lexicon.Lexicon | None = None,
             rrf_k: int = 60) -> "KnowledgeBase":
        """Open (creating and migrating) a knowledge base file; None for one in memory.

        Raises:
            KnowledgeError: the file is not a SQLite database or cannot be written.
        """
        try:
            db = open_database(path, MIGRATIONS)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise KnowledgeError(f"cannot open knowledge base {path}: {exc}; is it a knowledge base file?") from None
        return cls(db, lexicon, rrf_k)

    @classmethod
    def builtin(cls, lexicon: _lexicon.Lexicon | None = None) -> "KnowledgeBase":
        """The default knowledge (edge/data/knowledge.csv) in memory."""
        kb = cls.open(None, lexicon)
        kb.import_file(DEFAULT_KNOWLEDGE)
        return kb

    @property
    def version(self) -> int:
        return int(self.db.execute("select value from kb_meta where key = 'version'").fetchone()[0])

    def count(self) -> int:
        return self.db["entries"].count

    def import_file(self, path: str | Path, prune: bool = False) -> ImportReport:
        """Import a CSV, JSONL or Markdown file; see `import_entries`."""
        import hashlib

        path = Path(path)
        entries = importers.read(path)
        return self.import_entries(entries, origin=path.name, prune=prune,
                                   sha256=hashlib.sha256(path.read_bytes()).hexdigest())

    def import_entries(self, entries: Sequence[Entry], origin: str, prune: bool = False,
                       sha256: str = "") -> ImportReport:
        """Add or update entries by id, all in one transaction.

        Importing the same entries again changes nothing (not even the version).

        Args:
            entries: checked entries (importers.read).
            origin: the file they came from (kept per entry, used by `prune`).
            prune: also delete entries from the same origin that are no longer given.
        """
        table = self.db["entries"]
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        added = updated = unchanged = removed = 0
        try:
            with self.db.atomic():
                existing = {row[0]: (row[1], row[2]) for row in self.db.execute("select id, digest, origin from entries")}
                changed = []
                for entry in entries:
                    digest = entry.digest()
                    if existing.get(entry.id) == (digest, origin):
                        unchanged += 1
                        continue
                    changed.append(self._row(entry, origin, digest, now))
                    added += entry.id not in existing
                    updated += entry.id in existing
                if changed:
                    table.upsert_all(changed, pk="id")
                if prune:
                    keep = {e.id for e in entries}
                    stale = [r[0] for r in self.db.execute("select id from entries where origin = ?", [origin])
                             if r[0] not in keep]
                    for entry_id in stale:
                        table.delete(entry_id)
                    removed = len(stale)
                version = self.version + (1 if added or updated or removed else 0)
                self.db["kb_meta"].upsert({"key": "version", "value": str(version)}, pk="key")
                self.db["kb_imports"].insert({"file": origin, "sha256": sha256, "added": added, "updated": updated,
                                              "unchanged": unchanged, "removed": removed, "version": version,
                                              "at": now})
        except sqlite3.DatabaseError as exc:
            raise KnowledgeError(f"import of {origin} failed and was rolled back: {exc}") from None
        _LOGGER.debug("imported %s: +%d ~%d =%d -%d (v%d)", origin, added, updated, unchanged, removed, version)
        return ImportReport(origin, added, updated, unchanged, removed, version)

    def _row(self, entry: Entry, origin: str, digest: str, now: str) -> dict:
        question_text = " ".join([entry.question, *entry.aliases, *entry.tags])
        return {"id": entry.id, "question": entry.question, "aliases": json.dumps(entry.aliases, ensure_ascii=False),
                "answer": entry.answer, "tags": json.dumps(entry.tags, ensure_ascii=False), "source": entry.source,
                "origin": origin, "q_terms": " ".join(terms(question_text, self.lexicon)),
                "a_terms": " ".join(terms(entry.answer, self.lexicon)), "digest": digest, "updated_at": now}

    def search(self, query: str, tags: Sequence[str] | None = None, k: int = 3,
               retrievers: Sequence[str] = RETRIEVERS) -> list[Hit]:
        """The k best entries for a question, optionally only those with one of `tags`.

        Any text is safe here: it is cut into quoted terms (see edge.kb.text.fts_query)
        and bound as a parameter.

        Args:
            retrievers: which rankings to fuse, "text" (FTS5) and/or "vector";
                one alone is for measuring (benchmarks/kb.py).
        """
        query = query[:MAX_QUERY_CHARS]
        self._refresh()
        if not self._entries:
            return []
        by_id = self._by_id
        text_ranked = []
        safe = fts_query(query, self.lexicon, self._common) if "text" in retrievers else None
        if safe is not None:
            # the SQL is sqlite-utils' Table.search_sql, built once per index load
            text_ranked = [by_id[r[0]] for r in self.db.execute(self._search_sql, {"query": safe}) if r[0] in by_id]
        vector_scores = self._index.scores(ngrams(query, self.lexicon))
        vector_ranked = [row for row, _ in self._index.top(vector_scores, CANDIDATES)] if "vector" in retrievers else []
        fused: dict[int, float] = {}
        for weight, ranked in ((TEXT_WEIGHT, text_ranked), (1.0, vector_ranked)):
            for rank, row in enumerate(ranked, 1):
                fused[row] = fused.get(row, 0.0) + weight / (self.rrf_k + rank)
        wanted = set(tags or ())
        order = sorted(fused, key=lambda row: (-fused[row], -vector_scores[row]))
        hits = []
        for row in order:
            entry = self._entries[row]
            if wanted and not wanted & set(entry["tags"]):
                continue
            text_rank = text_ranked.index(row) + 1 if row in text_ranked else None
            hits.append(Hit(entry["id"], entry["question"], entry["answer"], tuple(entry["tags"]), entry["source"],
                            round(fused[row], 6), text_rank, round(float(vector_scores[row]), 4)))
            if len(hits) == k:
                break
        return hits

    def _refresh(self) -> None:
        version = self.version
        if version == self._loaded_version and self._index is not None:
            return
        rows = list(self.db.query("select id, question, aliases, answer, tags, source, q_terms, a_terms from entries "
                                  "order by rowid"))
        frequency: Counter = Counter()
        for row in rows:
            row["tags"] = json.loads(row["tags"])
            row["aliases"] = json.loads(row["aliases"])
            frequency.update(set(row.pop("q_terms").split()) | set(row.pop("a_terms").split()))
        limit = max(COMMON_TERM_MIN_ROWS, COMMON_TERM_SHARE * len(rows))
        self._common = frozenset(term for term, count in frequency.items() if count > limit)
        self._by_id = {row["id"]: i for i, row in enumerate(rows)}
        self._search_sql = self.db["entries"].search_sql(columns=["id"], limit=CANDIDATES)
        documents = []
        for row in rows:
            counts = ngrams(" ".join([row["question"], *row["aliases"], *row["tags"]]), self.lexicon)
            for term in counts:
                counts[term] *= QUESTION_WEIGHT
            counts.update(ngrams(row["answer"], self.lexicon))
            documents.append(counts)
        self._entries, self._index, self._loaded_version = rows, NgramIndex(documents), version

    def close(self) -> None:
        self.db.close()
