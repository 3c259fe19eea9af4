"""Opening the box's SQLite files one way: WAL, a busy timeout, write transactions that wait, migrations."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Generator
from pathlib import Path
from typing import Final

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

BUSY_TIMEOUT_MS: Final = 10_000
"""How long a writer waits for another process's write (the daemon, a dialler and the dashboard share calls.db)."""


class _Database(Database):
    """sqlite-utils' Database whose outermost transaction starts with BEGIN IMMEDIATE.

    A deferred BEGIN that reads and then writes (sqlite-utils' `update` reads the row first) cannot be
    upgraded to a write once another process has committed in between: WAL mode then fails it at once with
    "database is locked", without waiting out the busy timeout. IMMEDIATE takes the write lock up front,
    so concurrent writers queue instead. Nested blocks stay savepoints.
    """

    @contextlib.contextmanager
    def atomic(self) -> Generator[Database, None, None]:
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.rollback()
                raise


MAX_LIKE_CHARS = 200
LIKE_ESCAPE = "escape '\\'"
"""Goes after every `like ?` whose pattern comes from `like()`."""


def like(text: str, *, prefix: bool = False) -> str:
    """A LIKE pattern that matches caller text literally: % and _ are not wildcards, and it is cut
    to MAX_LIKE_CHARS (SQLite refuses patterns past 50,000 bytes, "LIKE or GLOB pattern too complex").

    Example:
        >>> like("50%_off"), like("dnc.", prefix=True)
        ('%50\\%\\_off%', 'dnc.%')
    """
    body = text[:MAX_LIKE_CHARS].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return body + "%" if prefix else f"%{body}%"


def open_database(path: str | Path | None, migrations: Migrations, *, threads: bool = False) -> Database:
    """Open or create a database file (None: in memory) and apply its pending migrations.

    `threads`: the connection may be used from another thread than this one (one at a time), e.g. a
    writer thread that keeps SQLite off an event loop.

    Raises sqlite3.DatabaseError or OSError as they come; callers turn them into
    their own typed error, which knows what the file is for.
    """
    if path is None:
        db = _Database(memory=True)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = _Database(sqlite3.connect(str(path), check_same_thread=not threads))
        db.execute("pragma busy_timeout = 10000")  # BUSY_TIMEOUT_MS
        db.enable_wal()
    migrations.apply(db)
    return db
