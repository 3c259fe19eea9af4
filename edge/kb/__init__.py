"""The SQLite knowledge base: import, hybrid (FTS5 + n-gram vector) retrieval."""

from edge.kb.importers import Entry
from edge.kb.store import Hit, ImportReport, KnowledgeBase

__all__ = ["Entry", "Hit", "ImportReport", "KnowledgeBase"]
