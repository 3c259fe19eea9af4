"""Lead import: encodings (UTF-8, BOM, GBK, mixed), hostile cells (formulas, 10 MB fields), dedupe,
DNC, line numbers, and a 100k-row file read as a stream."""

import codecs
import time

import pytest

from edge.calls import Records
from edge.calls import campaign as campaigns
from edge.calls import dnc
from edge.calls.leads import import_leads
from edge.errors import InputError

HEADER = "电话,姓名,公司,标签,行业\n"


@pytest.fixture
def db(tmp_path):
    return Records.open(tmp_path / "calls.db").db


@pytest.fixture
def campaign(db):
    return campaigns.create(db, "三月华东", {"sender": "智销云"}, actor="test")


def load(db, campaign, path, **kwargs):
    return import_leads(db, campaign.id, campaign.name, path, **kwargs)


def leads(db):
    return list(db.query("select name, company, e164, tags, vars, status, line from leads order by id"))


def test_utf8_with_and_without_bom_and_gbk_read_the_same(db, campaign, write_csv):
    text = HEADER + "13800138000,张伟,华星科技,重点|华东,制造\n"
    reports = [load(db, campaign, write_csv(data, f"f{i}.csv")) for i, data in enumerate(
        [text.encode("utf-8"), codecs.BOM_UTF8 + text.replace("13800138000", "13900139000").encode("utf-8"),
         text.replace("13800138000", "13700137000").encode("gbk")])]
    assert [r.encoding for r in reports] == ["UTF-8", "UTF-8 with BOM", "GBK"]
    assert [r.accepted for r in reports] == [1, 1, 1]
    assert "read as GBK" in reports[2].notes[0] and not reports[0].notes
    rows = leads(db)
    assert {r["name"] for r in rows} == {"张伟"} and {r["company"] for r in rows} == {"华星科技"}
    assert rows[0]["tags"] == '["重点", "华东"]' and rows[0]["vars"] == '{"行业": "制造"}'
    assert reports[0].variables == ["行业"]


def test_rejections_carry_line_numbers_and_reasons(db, campaign, write_csv):
    dnc.add(db, "13600136000", actor="test", reason="complained")
    path = write_csv(HEADER + "13800138000,a,,,\n"          # 2 ok
                     "1380013800,b,,,\n"                    # 3 too short
                     "138 0013 8000,c,,,\n"                 # 4 duplicate of line 2
                     "\n"                                   # 5 blank: skipped
                     "13600136000,d,,,\n"                   # 6 DNC
                     "\"=cmd|' /C calc'!A0\",e,,,\n"         # 7 formula in the phone column
                     "13500135000,=HYPERLINK(\"http://x\"),@SUM(1),,\n"  # 8 ok: kept as text, escaped on export
                     "13400134000,f,,,,,extra\n")           # 9 too many fields
    report = load(db, campaign, path)
    assert report.accepted == 2
    assert [(r.line, r.code) for r in report.rejections] == [(3, "phone"), (4, "duplicate"), (6, "dnc"), (7, "phone"),
                                                             (9, "columns")]
    assert report.rejections[1].reason == "duplicate of line 2"
    assert "not a phone number" in report.rejections[3].reason
    assert report.rejections[0].value == "138***3800"  # masked
    assert leads(db)[1]["name"] == '=HYPERLINK("http://x")'
    again = load(db, campaign, write_csv(HEADER + "+86 138-0013-8000,z,,,\n", "again.csv"))
    assert again.accepted == 0 and again.rejections[0].reason == "already in this campaign"


def test_a_10_mb_field_rejects_only_its_row(db, campaign, write_csv):
    huge = "x" * (10 * 1024 * 1024)
    path = write_csv(HEADER + f"13800138000,{huge},,,\n13900139000,ok,,,\n\"13700137000\",\"{huge}\",,,\n"
                     "13600136000,fine,,,\n")
    started = time.perf_counter()
    report = load(db, campaign, path)
    assert time.perf_counter() - started < 10
    assert report.accepted == 2 and [r.line for r in report.rejections] == [2, 4]
    assert all(r.code == "too_long" for r in report.rejections)
    assert [r["name"] for r in leads(db)] == ["ok", "fine"]


def test_long_cell_under_the_csv_limit_is_still_refused(db, campaign, write_csv):
    report = load(db, campaign, write_csv(HEADER + f"13800138000,{'名' * 600},,,\n"))
    assert report.accepted == 0 and "at most 500" in report.rejections[0].reason


def test_files_that_are_not_csv_text_get_a_clear_message(db, campaign, write_csv):
    with pytest.raises(InputError, match="Excel workbook"):
        load(db, campaign, write_csv(b"PK\x03\x04rest-of-a-zip", "leads.xlsx"))
    with pytest.raises(InputError, match="no phone column"):
        load(db, campaign, write_csv("name,company\n张伟,华星\n"))
    with pytest.raises(InputError, match="neither UTF-8 nor GBK"):
        load(db, campaign, write_csv(b"phone\n\x81\xff\xfe\x80\n"))
    with pytest.raises(InputError, match="cannot read"):
        load(db, campaign, write_csv("", "x.csv").with_name("missing.csv"))


def test_a_file_that_changes_encoding_midway_imports_nothing(db, campaign, write_csv):
    good = "".join(f"1380000{i:04d},客户{i},,,\n" for i in range(5000))  # > the 64 KB sniffed as UTF-8
    bad = "13900139000,张伟,,,\n".encode("gbk")
    path = write_csv((HEADER + good).encode("utf-8") + bad)
    with pytest.raises(InputError, match="not valid UTF-8.*CSV UTF-8"):
        load(db, campaign, path)
    assert leads(db) == []


def test_tab_separated_utf16_and_default_area_code(db, campaign, write_csv):
    text = "手机号\t姓名\n021-87654321\t王\n87654322\t李\n"
    report = load(db, campaign, write_csv(text.encode("utf-16")), default_area_code="021")
    assert report.encoding == "UTF-16" and report.delimiter == "tab" and report.accepted == 2
    assert [r["e164"] for r in leads(db)] == ["+862187654321", "+862187654322"]


def test_100k_rows_stream_with_progress(db, campaign, tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("phone,name,company,city\n")
        for i in range(100_000):
            out.write(f"13{i % 10}{i:08d},客户{i},公司{i % 977},上海\n")
        out.write("12345,bad,,\n")
    seen = []
    started = time.perf_counter()
    report = load(db, campaign, path, progress=seen.append)
    elapsed = time.perf_counter() - started
    assert report.accepted == 100_000 and report.rejected == 1 and report.rejections[0].line == 100_002
    assert len(seen) >= 50 and seen == sorted(seen) and seen[-1] == path.stat().st_size
    assert db.execute("select count(*) from leads where campaign_id = ?", [campaign.id]).fetchone()[0] == 100_000
    assert elapsed < 20, f"import took {elapsed:.1f} s"
