"""Opening the box's SQLite files one way: WAL, a busy timeout, pending migrations applied."""

from __future__ import annotations

from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations


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


def open_database(path: str | Path | None, migrations: Migrations) -> Database:
    """Open or create a database file (None: in memory) and apply its pending migrations.

    Raises sqlite3.DatabaseError or OSError as they come; callers turn them into
    their own typed error, which knows what the file is for.
    """
    if path is None:
        db = Database(memory=True)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = Database(path)
        db.execute("pragma busy_timeout = 10000")  # several writers of one box share some files
        db.enable_wal()
    migrations.apply(db)
    return db
