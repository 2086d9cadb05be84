"""Ratings at the gateway: desk sessions, the published state, the satisfaction report.

Votes are stored through the gateway's real ingest; the commands run as a
technician types them (`congso desk ...`, `congso report ratings ...`).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from congso.gateway import ratings
from congso.gateway.db import open_db
from congso.gateway.domains import DOMAINS
from congso.gateway.state import Context, Publisher
from congso.protocol import messages
from congso.protocol import settings as settings_mod

from conftest import SITE, run_congso
from rating_helpers import TZ, add_staff, store, vote

ZONE = ZoneInfo(TZ)


def env_for(data_dir) -> dict:
    return {"CONGSO_DATA_DIR": str(data_dir), "CONGSO_SITE_ID": SITE, "CONGSO_SITE_NAME": "UBND xã Kỳ Châu"}


@pytest.fixture
def november(tmp_path):
    """A month of votes with known totals (see the expected tables below)."""
    db_file = tmp_path / "gateway.sqlite"
    add_staff(db_file, {"NV001": "Nguyễn Văn An", "NV002": "Trần Thị Bình"})
    store(db_file, [
        # NV001: 2 very satisfied (one at 01:00 on 1 Nov office time, 18:00 UTC the day before), 1 dissatisfied.
        vote("very_satisfied", "2026-10-31T18:00:00Z", officer="NV001", session="s1"),
        vote("very_satisfied", "2026-11-03T09:00:00+07:00", officer="NV001", session="s2"),
        vote("dissatisfied", "2026-11-04T09:00:00+07:00", officer="NV001", reasons=["thoi_gian", "thai_do"]),
        # NV002: 3 satisfied, 1 very satisfied flagged as a burst.
        vote("satisfied", "2026-11-05T08:00:00+07:00", officer="NV002"),
        vote("satisfied", "2026-11-06T08:00:00+07:00", officer="NV002"),
        vote("satisfied", "2026-11-30T23:59:59+07:00", officer="NV002"),
        vote("very_satisfied", "2026-11-07T08:00:00+07:00", officer="NV002", burst=True),
        # No session, another desk.
        vote("dissatisfied", "2026-11-10T10:00:00+07:00", desk="mot-cua-2"),
        # Outside the month in office time: 31 Oct 23:59, and 1 Dec 00:30 (30 Nov 17:30 UTC).
        vote("very_satisfied", "2026-10-31T23:59:00+07:00", officer="NV001"),
        vote("dissatisfied", "2026-11-30T17:30:00Z", officer="NV002"),
    ])
    return tmp_path


def report_csv(data_dir, *extra) -> list[list[str]]:
    out = run_congso("report", "ratings", "--from", "2026-11-01", "--to", "2026-11-30", "--csv", "-", *extra,
                     **env_for(data_dir))
    assert out.returncode == 0, out.stderr
    return list(csv.reader(io.StringIO(out.stdout)))


def test_report_by_officer_numbers_exact(november, tmp_path):
    rows = report_csv(november)
    assert rows[0] == ["Đơn vị", "Mã cán bộ", "Cán bộ", "Số phiếu", "Rất hài lòng", "Hài lòng", "Không hài lòng",
                       "Rất hài lòng (%)", "Hài lòng (%)", "Không hài lòng (%)", "Tỷ lệ hài lòng (%)",
                       "Phiếu nghi bấm liên tục"]
    unit = "UBND xã Kỳ Châu"
    assert rows[1:] == [
        [unit, "NV001", "Nguyễn Văn An", "3", "2", "0", "1", "66.7", "0.0", "33.3", "66.7", "0"],
        [unit, "NV002", "Trần Thị Bình", "4", "1", "3", "0", "25.0", "75.0", "0.0", "100.0", "1"],
        [unit, "", "(không gắn cán bộ)", "1", "0", "0", "1", "0.0", "0.0", "100.0", "0.0", "0"],
        [unit, "", "Tổng cộng", "8", "3", "3", "2", "37.5", "37.5", "25.0", "75.0", "1"],
    ]
    # Flagged bursts left out: NV002 keeps its three satisfied votes.
    rows = report_csv(november, "--exclude-flagged")
    assert rows[2][3:7] == ["3", "0", "3", "0"] and rows[-1][3:12] == ["7", "2", "3", "2", "28.6", "42.9", "28.6", "71.4", "0"]


def test_report_by_desk_and_reason(november):
    rows = report_csv(november, "--by", "desk")
    assert rows[0][:4] == ["Đơn vị", "Quầy", "Số phiếu", "Rất hài lòng"]
    assert [r[1:7] for r in rows[1:]] == [
        ["mot-cua-1", "7", "3", "3", "1", "42.9"],
        ["mot-cua-2", "1", "0", "0", "1", "0.0"],
        ["Tổng cộng", "8", "3", "3", "2", "37.5"],
    ]
    rows = report_csv(november, "--by", "reason")
    assert rows[0] == ["Đơn vị", "Mã lý do", "Lý do", "Số phiếu chọn", "Tỷ lệ trên số phiếu không hài lòng (%)"]
    by_code = {r[1] or r[2]: r[3:] for r in rows[1:]}
    assert by_code["thoi_gian"] == ["1", "50.0"] and by_code["thai_do"] == ["1", "50.0"]
    assert by_code["phi"] == ["0", "0.0"] and by_code["khac"] == ["0", "0.0"]
    assert by_code["(không chọn lý do)"] == ["1", "50.0"]
    assert by_code["Tổng số phiếu không hài lòng"] == ["2", ""]
    assert rows[1][2] == "Thời gian giải quyết quá hạn, kéo dài"


def test_report_xlsx_and_terminal(november, tmp_path):
    book = tmp_path / "hai-long.xlsx"
    out = run_congso("report", "ratings", "--from", "2026-11-01", "--to", "2026-11-30", "--xlsx", str(book),
                     **env_for(november))
    assert out.returncode == 0, out.stderr
    assert "Nguyễn Văn An" in out.stdout and "satisfied %" in out.stdout  # English headers on the terminal
    ws = load_workbook(book).active
    values = list(ws.iter_rows(values_only=True))
    assert values[0][0] == "BÁO CÁO KẾT QUẢ ĐÁNH GIÁ MỨC ĐỘ HÀI LÒNG (THEO CÁN BỘ)"
    assert values[1][0] == "Đơn vị: UBND xã Kỳ Châu" and values[2][0] == "Từ ngày 01/11/2026 đến ngày 30/11/2026"
    header = values.index(next(r for r in values if r[0] == "Đơn vị"))
    assert values[header + 1][:12] == ("UBND xã Kỳ Châu", "NV001", "Nguyễn Văn An", 3, 2, 0, 1, 66.7, 0.0, 33.3, 66.7, 0)
    assert values[-1][2:4] == ("Tổng cộng", 8)


def test_report_refuses_bad_dates(november):
    out = run_congso("report", "ratings", "--from", "2026-11-31", "--to", "2026-11-30", **env_for(november))
    assert out.returncode != 0 and "--from must be a date like 2026-11-23, got '2026-11-31'" in out.stderr
    out = run_congso("report", "ratings", "--from", "2026-12-01", "--to", "2026-11-30", **env_for(november))
    assert out.returncode != 0 and "--from 2026-12-01 is after --to 2026-11-30" in out.stderr


def test_desk_commands(tmp_path):
    env = env_for(tmp_path)
    # An office without a staff list yet: the id stands for the name.
    out = run_congso("desk", "open", "--desk", "mot-cua-1", "--officer", "NV009", **env)
    assert out.returncode == 0 and "NV009 (NV009)" in out.stdout, out.stderr
    add_staff(tmp_path / "gateway.sqlite", {"NV001": "Nguyễn Văn An", "NV002": "Trần Thị Bình"})
    out = run_congso("desk", "open", "--desk", "mot-cua-1", "--officer", "NV404", **env)
    assert out.returncode != 0 and "unknown officer 'NV404': not in the staff list (known: NV001, NV002)" in out.stderr
    out = run_congso("desk", "open", "--desk", "Quầy 1", "--officer", "NV001", **env)
    assert out.returncode != 0 and "invalid desk id 'Quầy 1'" in out.stderr
    out = run_congso("desk", "open", "--desk", "mot-cua-1", "--officer", "NV001", "--dossier", "H23-0001", "--minutes", "30", **env)
    assert out.returncode == 0 and "Nguyễn Văn An (NV001), dossier H23-0001" in out.stdout, out.stderr
    out = run_congso("desk", "list", **env)
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and lines[1].split()[:3] == ["mot-cua-1", "NV001", "Nguyễn"]  # the NV009 one was replaced
    out = run_congso("desk", "close", "--desk", "mot-cua-1", **env)
    assert out.returncode == 0 and "closed" in out.stdout
    out = run_congso("desk", "close", "--desk", "mot-cua-1", **env)
    assert out.returncode != 0 and "no session is open on desk mot-cua-1" in out.stderr
    assert run_congso("desk", "list", **env).stdout.strip() == "no session open"
    db = open_db(tmp_path / "gateway.sqlite")
    assert [r[0] for r in db.execute("SELECT closed_by FROM desk_sessions ORDER BY opened_at, closed_by")] in (
        ["replaced", "closed"], ["closed", "replaced"])


class Capture:
    def __init__(self):
        self.sent: dict[str, bytes] = {}

    def __call__(self, topic, payload, retain):
        assert retain
        self.sent[topic] = payload


def test_published_state_sessions_and_summary(tmp_path):
    db_file = tmp_path / "gateway.sqlite"
    add_staff(db_file, {"NV001": "Nguyễn Văn An"})
    db = open_db(db_file)
    settings = settings_mod.load(environ={"CONGSO_SITE_ID": SITE})
    capture = Capture()
    publisher = Publisher(db, settings, capture, DOMAINS)
    desk_topic = f"congso/{SITE}/state/desk/mot-cua-1"

    session = ratings.open_session(db, "mot-cua-1", "NV001", datetime.now(ZONE), "H23-0001", minutes=10)
    publisher.rebuild()
    sent = messages.decode("desk", capture.sent[desk_topic])
    assert sent["officer_name"] == "Nguyễn Văn An" and sent["session_id"] == session["session_id"]
    assert sent["dossier_code"] == "H23-0001"

    # The citizen's vote, carrying the session, closes it; the topic is cleared.
    now = datetime.now(ZONE).isoformat(timespec="seconds")
    store(db_file, [vote("satisfied", now, officer="NV001", session=session["session_id"])])
    capture.sent.clear()
    publisher.rebuild()
    assert capture.sent[desk_topic] == b""
    assert db.execute("SELECT closed_by FROM desk_sessions").fetchall() == [("vote",)]
    summary = messages.decode("ratings", capture.sent[f"congso/{SITE}/state/ratings"])
    assert summary["today"] == {"very_satisfied": 0, "satisfied": 1, "dissatisfied": 0}
    assert summary["satisfied_pct_month"] == 100.0

    # A session past its expiry: closed by maintenance, never published as open.
    ratings.open_session(db, "mot-cua-1", "NV001", datetime.now(ZONE) - timedelta(minutes=20), minutes=15)
    capture.sent.clear()
    publisher.rebuild()
    assert capture.sent.get(desk_topic, b"") == b""
    assert db.execute("SELECT closed_by FROM desk_sessions ORDER BY opened_at").fetchall()[0] == ("expired",)


def test_summary_counts_today_and_month(tmp_path):
    db_file = tmp_path / "gateway.sqlite"
    store(db_file, [
        vote("very_satisfied", "2026-11-20T07:30:00+07:00"),
        vote("dissatisfied", "2026-11-20T16:00:00+07:00"),
        vote("satisfied", "2026-11-02T09:00:00+07:00"),
        vote("neutral", "2026-11-03T09:00:00+07:00"),          # from a 5-level kiosk
        vote("very_satisfied", "2026-10-31T09:00:00+07:00"),   # last month
    ])
    db = open_db(db_file)
    ctx = Context(SITE, TZ, datetime(2026, 11, 20, 17, 0, tzinfo=ZONE), settings_mod.load(environ={}))
    out = ratings.build(db, ctx)
    assert out["ratings"] == {
        "today": {"very_satisfied": 1, "satisfied": 0, "dissatisfied": 1},
        "month": {"very_satisfied": 1, "satisfied": 1, "neutral": 1, "dissatisfied": 1},
        "satisfied_pct_month": 50.0,
    }
