"""Opening the box's SQLite files one way: WAL, a busy timeout, pending migrations applied."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations


def open_database(path: str | Path | None, migrations: Migrations, *, threads: bool = False) -> Database:
    """Open or create a database file (None: in memory) and apply its pending migrations.

    `threads`: the connection may be used from another thread than this one (one at a time), e.g. a
    writer thread that keeps SQLite off an event loop.

    Raises sqlite3.DatabaseError or OSError as they come; callers turn them into
    their own typed error, which knows what the file is for.
    """
    if path is None:
        db = Database(memory=True)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = Database(sqlite3.connect(str(path), check_same_thread=not threads))
        db.execute("pragma busy_timeout = 10000")  # several writers of one box share some files
        db.enable_wal()
    migrations.apply(db)
    return db
