"""Call records know where a conversation came from: phone (default) or kiosk (migration 003_call_source)."""

from __future__ import annotations

import pytest
from sqlite_utils import Database

from edge.calls.records import MIGRATIONS, Records
from edge.errors import RecordsError


def test_kiosk_records_carry_their_source(tmp_path):
    path = tmp_path / "calls.db"
    phone = Records.open(path)
    phone_id = phone.start_call({"lead_name": "张伟"}, "default", 1, "2025-03-05T14:20:00+08:00")
    phone.close()
    kiosk = Records.open(path, source="kiosk")
    kiosk_id = kiosk.start_call({}, "default", 1, "2025-03-05T14:25:00+08:00")
    rows = {r["id"]: r["source"] for r in kiosk.db["calls"].rows}
    assert rows == {phone_id: "phone", kiosk_id: "kiosk"}
    assert "source" in {c.name for c in kiosk.db["calls"].columns}


def test_migration_keeps_old_calls_as_phone_calls(tmp_path):
    path = tmp_path / "old.db"
    db = Database(path)
    MIGRATIONS.apply(db, stop_before="003_call_source")  # a database from before the kiosk
    db["leads"].insert({"id": 1, "name": "李", "company": "", "phone": "", "created_at": "2025-01-01"})
    db["calls"].insert({"id": "old1", "lead_id": 1, "script": "s", "script_version": 1,
                        "started_at": "2025-01-01T10:00:00+08:00", "ended_at": None})
    db.close()
    records = Records.open(path)
    assert records.db["calls"].get("old1")["source"] == "phone"
    assert "003_call_source" in {m.name for m in MIGRATIONS.applied(records.db)}


def test_unknown_source_is_refused():
    with pytest.raises(RecordsError, match="call source must be one of"):
        Records.open(None, source="fax")
