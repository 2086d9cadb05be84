"""The integration API, sentence by sentence of ``../shared/OFFICE.md`` (Integration API).

Through the ASGI test client on a real gateway database; the last test runs
the real broker and gateway and watches the public board on MQTT.
"""

from __future__ import annotations

import io
import json
import time
import unicodedata
import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from conftest import SITE, start_gateway, wait_for
from mqtt_helpers import RawClient
from web_helpers import Console
from congso.gateway import accounts, audit, days_off, dossiers, staff, timesheet
from congso.gateway.db import open_db
from congso.gateway.ingest import Ingest
from congso.protocol import messages
from congso.protocol.link import Incoming
from congso.vocab.vietnamese import mask_name
from congso.web.app import create_app

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=TZ)

GOOD = {"applicant": "Nguyễn Thị Thu Hà", "procedure": "Đăng ký khai sinh",
        "received_at": "2026-11-23T08:15:00+07:00", "due_at": "2026-11-26T17:00:00+07:00", "status": "received"}
CODE = "000.00.12.H23-261123-0001"


@pytest.fixture
def console(tmp_path):
    return Console(tmp_path, clock=lambda: NOW)


def token(console, *scopes, name=None) -> dict:
    name = name or f"t-{uuid.uuid4().hex[:6]}"
    return {"Authorization": f"Bearer {accounts.create_token(console.db, name, list(scopes))}"}


def client(console) -> TestClient:
    return console.client()


def assert_error(r, status: int, field=None):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error", "field"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert body["error"][:12].isascii(), body  # English (it may quote what was sent)
    assert body["field"] == field, body
    return body


def count(console) -> int:
    return console.db.execute("SELECT count(*) FROM dossiers").fetchone()[0]


# -- tokens: 401, 403, 413 -------------------------------------------------------------------
def test_no_or_unknown_token_is_401_and_wrong_scope_403_in_the_error_shape(console):
    c = client(console)
    assert_error(c.get("/api/v1/dossiers"), 401)
    assert_error(c.get("/api/v1/dossiers", headers={"Authorization": "Bearer not-a-token"}), 401)
    assert_error(c.put(f"/api/v1/dossiers/{CODE}", json=GOOD, headers={"Authorization": "Bearer nope"}), 401)
    reader = token(console, "dossiers:read")
    assert c.get("/api/v1/dossiers", headers=reader).status_code == 200
    assert_error(c.put(f"/api/v1/dossiers/{CODE}", json=GOOD, headers=reader), 403)
    assert_error(c.get("/api/v1/reports/attendance?month=2026-10", headers=reader), 403)
    assert_error(c.post("/api/v1/calendar", json={"start": "2026-11-25T08:00:00+07:00", "title": "Họp"}, headers=reader), 403)
    assert_error(c.delete("/api/v1/calendar/c-1", headers=reader), 403)
    writer = token(console, "dossiers:write")
    assert_error(c.get("/api/v1/dossiers", headers=writer), 403)
    assert count(console) == 0
    # A revoked token is unknown.
    name = "revoked-one"
    h = token(console, "dossiers:read", name=name)
    accounts.revoke_token(console.db, name)
    assert_error(c.get("/api/v1/dossiers", headers=h), 401)


def test_a_body_over_64_kib_is_413_and_stores_nothing(console):
    c = client(console)
    h = token(console, "dossiers:write")
    big = {**GOOD, "procedure": "x" * (65 * 1024)}
    assert_error(c.put(f"/api/v1/dossiers/{CODE}", json=big, headers=h), 413)
    assert_error(c.post("/api/v1/calendar", json={"start": "2026-11-25", "title": "y" * 70000},
                        headers=token(console, "calendar:write")), 413)
    assert count(console) == 0


# -- PUT /api/v1/dossiers/{code} ---------------------------------------------------------------
def test_put_creates_201_then_updates_200_and_keeps_the_status_history(console):
    c = client(console)
    h = token(console, "dossiers:write", "dossiers:read", name="mot-cua-tinh")
    r = c.put(f"/api/v1/dossiers/{CODE}", json={**GOOD, "desk": "Quầy 1", "online": True}, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["code"] == CODE and body["applicant"] == GOOD["applicant"] and body["online"] is True
    assert body["desk"] == "Quầy 1" and body["status"] == "received"
    row = dossiers.get(console.db, CODE)
    assert row["online"] == 1 and row["received_at"] == "2026-11-23T08:15:00+07:00"

    r = c.put(f"/api/v1/dossiers/{CODE}", json={**GOOD, "status": "ready", "online": True}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready" and r.json()["desk"] is None
    assert [h_["status"] for h_ in dossiers.history(console.db, CODE)] == ["received", "ready"]
    assert {h_["source"] for h_ in dossiers.history(console.db, CODE)} == {"api"}
    # The same again: 200, nothing new in the history.
    assert c.put(f"/api/v1/dossiers/{CODE}", json={**GOOD, "status": "ready", "online": True}, headers=h).status_code == 200
    assert len(dossiers.history(console.db, CODE)) == 2
    # "online" left out keeps what is stored.
    c.put(f"/api/v1/dossiers/{CODE}", json={**GOOD, "status": "ready"}, headers=h)
    assert dossiers.get(console.db, CODE)["online"] == 1
    # Times in another offset are kept in the office's.
    c.put(f"/api/v1/dossiers/{CODE}", json={**GOOD, "received_at": "2026-11-23T01:15:00Z"}, headers=h)
    assert dossiers.get(console.db, CODE)["received_at"] == "2026-11-23T08:15:00+07:00"


def test_every_api_change_is_audited_with_the_token_name(console):
    c = client(console)
    h = token(console, "dossiers:write", name="mot-cua-tinh")
    c.put(f"/api/v1/dossiers/{CODE}", json=GOOD, headers=h)
    c.put(f"/api/v1/dossiers/{CODE}", json={**GOOD, "status": "processing"}, headers=h)
    assert c.put(f"/api/v1/dossiers/{CODE}", json={**GOOD, "status": "processing"}, headers=h).status_code == 200  # unchanged: no row
    cal = token(console, "calendar:write", name="lich-script")
    entry = c.post("/api/v1/calendar", json={"start": "2026-11-25T08:00:00+07:00", "title": "Họp giao ban"}, headers=cal).json()
    c.delete(f"/api/v1/calendar/{entry['id']}", headers=cal)
    rows, total = audit.search(console.db)
    got = sorted((r["actor"], r["via"], r["action"], r["target"]) for r in rows)
    assert got == sorted([
        ("token:mot-cua-tinh", "api", "dossiers.create", CODE),
        ("token:mot-cua-tinh", "api", "dossiers.update", CODE),
        ("token:lich-script", "api", "calendar.add", entry["id"]),
        ("token:lich-script", "api", "calendar.remove", entry["id"]),
    ])
    assert all(GOOD["applicant"] not in (r["detail"] or "") for r in rows)  # no citizen's name in the log


@pytest.mark.parametrize("change, field", [
    ({"applicant": "Nguyễn\x00 Hà"}, "applicant"),         # a control character (a bad export)
    ({"procedure": "Khai sinh\x1b[2J"}, "procedure"),
    ({"applicant": "   "}, "applicant"),
    ({"applicant": 12}, "applicant"),
    ({"status": "done"}, "status"),
    ({"status": "Đang xử lý"}, "status"),                    # the wire value, not a Vietnamese word
    ({"received_at": "23/11/2026"}, "received_at"),
    ({"received_at": "2026-11-23T08:15:00"}, "received_at"),  # no offset
    ({"received_at": "2026-13-40T08:15:00+07:00"}, "received_at"),
    ({"due_at": "tomorrow"}, "due_at"),
    ({"due_at": "2026-11-20T17:00:00+07:00"}, "due_at"),      # before it was received
    ({"online": "yes"}, "online"),
    ({"desk": ["Quầy 1"]}, "desk"),
    ({"code": "HS-OTHER"}, "code"),                            # the body contradicts the path
])
def test_a_bad_field_is_422_naming_it_and_stores_nothing(console, change, field):
    c = client(console)
    h = token(console, "dossiers:write")
    before = {**GOOD, "desk": "Quầy 2"}
    assert c.put(f"/api/v1/dossiers/{CODE}", json=before, headers=h).status_code == 201
    stored = dossiers.get(console.db, CODE)
    r = c.put(f"/api/v1/dossiers/{CODE}", json={**GOOD, **change}, headers=h)
    assert_error(r, 422, field)
    assert dossiers.get(console.db, CODE) == stored
    # ... and a new code is not created either.
    assert_error(c.put("/api/v1/dossiers/HS-NEW", json={**GOOD, **change}, headers=h), 422, field)
    assert dossiers.get(console.db, "HS-NEW") is None


@pytest.mark.parametrize("missing", ["applicant", "procedure", "received_at", "due_at", "status"])
def test_a_missing_field_is_422_naming_it(console, missing):
    h = token(console, "dossiers:write")
    body = {k: v for k, v in GOOD.items() if k != missing}
    assert_error(client(console).put(f"/api/v1/dossiers/{CODE}", json=body, headers=h), 422, missing)
    assert count(console) == 0


def test_a_body_that_is_not_a_json_object_is_422(console):
    c = client(console)
    h = {**token(console, "dossiers:write"), "Content-Type": "application/json"}
    assert_error(c.put(f"/api/v1/dossiers/{CODE}", content=b"{not json", headers=h), 422)
    assert_error(c.put(f"/api/v1/dossiers/{CODE}", content=b"[1, 2]", headers=h), 422)
    assert_error(c.put(f"/api/v1/dossiers/{CODE}", content=b"", headers=h), 422)
    assert_error(c.put("/api/v1/dossiers/HS%00X", json=GOOD, headers=h), 422, "code")
    assert count(console) == 0


def test_put_cleans_text_as_an_import_does_nfc_and_one_space(console):
    decomposed = unicodedata.normalize("NFD", "Trần  Văn   Đức")
    h = token(console, "dossiers:write")
    r = client(console).put(f"/api/v1/dossiers/{CODE}", json={**GOOD, "applicant": decomposed}, headers=h)
    assert r.status_code == 201
    stored = dossiers.get(console.db, CODE)["applicant"]
    assert stored == "Trần Văn Đức" and unicodedata.is_normalized("NFC", stored)
    # The board (what the TVs get) is masked, the API and the console keep the full name.
    board = dossiers.board(console.db, NOW)
    assert [d["applicant"] for d in board["dossiers"]] == [mask_name("Trần Văn Đức")]
    assert "Trần Văn Đức" not in json.dumps(board, ensure_ascii=False)


def test_a_session_may_call_the_api_with_its_csrf_header(console):
    c = console.as_role("officer")
    assert_error(c.put(f"/api/v1/dossiers/{CODE}", json=GOOD), 403)  # no CSRF header
    assert c.put(f"/api/v1/dossiers/{CODE}", json=GOOD, headers={"X-CSRF-Token": c.csrf}).status_code == 201
    row = audit.search(console.db)[0][0]
    assert (row["actor"], row["via"]) == ("u-officer", "web")
    assert_error(c.get("/api/v1/reports/attendance?month=2026-10"), 403)  # an officer has no reports:read


# -- GET /api/v1/dossiers ------------------------------------------------------------------------
def test_get_lists_every_dossier_with_full_fields_and_filters_by_status(console):
    c = client(console)
    w = token(console, "dossiers:write")
    for n, status in enumerate(["received", "processing", "processing", "ready", "returned"]):
        r = c.put(f"/api/v1/dossiers/HS-{n}", json={**GOOD, "applicant": f"Lê Văn Số {n}", "status": status}, headers=w)
        assert r.status_code == 201
    h = token(console, "dossiers:read")
    r = c.get("/api/v1/dossiers", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    got = r.json()
    assert isinstance(got, list) and sorted(d["code"] for d in got) == [f"HS-{n}" for n in range(5)]
    first = next(d for d in got if d["code"] == "HS-0")
    assert first["applicant"] == "Lê Văn Số 0"  # full, for the authorised system
    assert {"code", "applicant", "procedure", "received_at", "due_at", "status", "desk", "online"} <= set(first)
    processing = c.get("/api/v1/dossiers?status=processing", headers=h).json()
    assert sorted(d["code"] for d in processing) == ["HS-1", "HS-2"]
    assert all(d["status"] == "processing" for d in processing)
    assert c.get("/api/v1/dossiers?status=supplement_required", headers=h).json() == []
    assert_error(c.get("/api/v1/dossiers?status=nonsense", headers=h), 422, "status")


# -- GET /api/v1/reports/attendance --------------------------------------------------------------
# October 2026: the 1st is a Thursday; weekends 3-4, 10-11, 17-18, 24-25, 31; the 20th a holiday.
SPECIAL = {
    2: ["07:40", "17:01"],    # late 10 (more than 5 minutes of grace)
    5: [],                    # absent
    6: ["07:29"],             # one morning scan: no out
    7: ["07:20", "16:40"],    # left 20 minutes early
    12: ["16:58"],            # one afternoon scan: no in
}
UNSYNCED = 14


def _working(day: int) -> bool:
    return date(2026, 10, day).weekday() < 5 and day != 20


def _month_office(console, last_day: int = 31) -> None:
    db = console.db
    staff.add(db, "NV001", "Phạm Văn An", "Văn phòng")
    staff.add(db, "NV002", "Lê Thị Bình", "Địa chính")
    days_off.add_off(db, "2026-10-20", "Ngày nghỉ bù")
    events, seq = [], 0
    for day in range(1, last_day + 1):
        for who in ("NV001", "NV002"):
            times = SPECIAL.get(day, ["07:25", "17:02"] if _working(day) else []) if who == "NV001" else \
                (["07:25", "17:02"] if _working(day) and day != 9 else [])
            for hm in times:
                seq += 1
                events.append({"v": 1, "event_id": str(uuid.uuid4()), "node_id": "door-1", "seq": seq,
                               "ts": f"2026-10-{day:02d}T{hm}:{seq % 60:02d}+07:00", "clock_synced": day != UNSYNCED,
                               "method": "card", "credential": "AA", "staff_id": who, "match_score": None})
    ingest = Ingest(db, "ky-chau", "Asia/Ho_Chi_Minh", max_behind_days=3650)
    result = ingest.process([Incoming("congso/ky-chau/node/door-1/attendance", messages.encode("attendance", e),
                                      time.monotonic()) for e in events])
    assert result.stored == len(events), result


def test_the_month_as_json_has_every_day_as_a_key_and_the_right_totals(console):
    _month_office(console)
    h = token(console, "reports:read")
    r = client(console).get("/api/v1/reports/attendance?month=2026-10", headers=h)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["v"], got["month"], got["office"]) == (1, "2026-10", console.settings.site.name)
    by_id = {s["staff_id"]: s for s in got["staff"]}
    assert set(by_id) == {"NV001", "NV002"}
    an = by_id["NV001"]
    assert an["name"] == "Phạm Văn An"
    assert list(an["days"]) == [str(d) for d in range(1, 32)]
    days = an["days"]
    assert all(set(d) == {"am", "pm", "in", "out", "late_min", "early_min", "flags"} for d in days.values())
    assert days["1"] == {"am": "+", "pm": "+", "in": "07:25", "out": "17:02", "late_min": 0, "early_min": 0, "flags": []}
    assert (days["2"]["late_min"], days["2"]["in"]) == (10, "07:40")
    assert (days["3"]["am"], days["3"]["pm"], days["4"]["am"]) == ("-", "-", "-")  # the weekend
    assert (days["5"]["am"], days["5"]["pm"], days["5"]["in"], days["5"]["out"]) == ("V", "V", None, None)
    assert days["6"]["flags"] == ["missing_out"] and days["6"]["out"] is None
    assert days["7"]["early_min"] == 20
    assert days["12"]["flags"] == ["missing_in"] and days["12"]["in"] is None and days["12"]["out"] == "16:58"
    assert days["14"]["flags"] == ["clock_unsynced"]
    assert (days["20"]["am"], days["20"]["pm"]) == ("L", "L")
    # The contract's totals, and the form's other "quy ra công" columns: 21 working days, one of them absent.
    assert an["totals"] == {"absent_days": 1, "late_min": 10, "early_min": 20, "worked_days": 20,
                            "paid_leave_days": 1, "unpaid_days": 0, "insurance_days": 0}
    binh = by_id["NV002"]
    assert binh["days"]["9"]["am"] == "V"
    assert {k: binh["totals"][k] for k in ("absent_days", "late_min", "early_min")} == {"absent_days": 1, "late_min": 0, "early_min": 0}
    assert len(binh["days"]) == 31
    # February has 28 keys.
    feb = client(console).get("/api/v1/reports/attendance?month=2027-02", headers=h).json()
    assert list(feb["staff"][0]["days"]) == [str(d) for d in range(1, 29)]


def test_days_not_over_are_null(console):
    _month_office(console, last_day=15)
    morning = datetime(2026, 10, 15, 9, 0, tzinfo=TZ)
    app = create_app(console.settings, db_path=console.db_path, clock=lambda: morning)
    c = TestClient(app, base_url="http://127.0.0.1:8080")
    got = c.get("/api/v1/reports/attendance?month=2026-10", headers=token(console, "reports:read")).json()
    days = {s["staff_id"]: s for s in got["staff"]}["NV001"]["days"]
    # At 09:00 the morning session is not over: not judged yet, though the "in" is known.
    assert (days["15"]["am"], days["15"]["pm"], days["15"]["in"], days["15"]["flags"]) == (None, None, "07:25", [])
    assert days["14"]["am"] == "+"
    assert (days["16"]["am"], days["16"]["pm"]) == (None, None)
    assert (days["17"]["am"], days["17"]["pm"]) == ("-", "-")


def test_the_month_as_xlsx_reads_back(console):
    _month_office(console)
    h = token(console, "reports:read")
    r = client(console).get("/api/v1/reports/attendance?month=2026-10&format=xlsx", headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "attachment" in r.headers["content-disposition"] and ".xlsx" in r.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(r.content)).active
    cells = [[c for c in row] for row in ws.iter_rows(values_only=True)]
    an = next(row for row in cells if row[1] == "Phạm Văn An")  # the form: STT, name, position, a column a day
    assert an[3] == "+" and an[3 + 4] == "V" and an[3 + 19] == "L"  # the 1st, the 5th, the 20th
    assert list(an[3 + 31:3 + 38]) == [20, 1, 0, 0, 1, 10, 20]  # worked, paid leave, unpaid, BHXH, absent, late, early


@pytest.mark.parametrize("query, field", [("", "month"), ("?month=2026-13", "month"), ("?month=10-2026", "month"),
                                          ("?month=2026-10&format=pdf", "format")])
def test_a_bad_month_or_format_is_422(console, query, field):
    assert_error(client(console).get(f"/api/v1/reports/attendance{query}", headers=token(console, "reports:read")), 422, field)


# -- calendar:write ------------------------------------------------------------------------------
def test_calendar_entries_are_added_201_with_their_id_and_deleted(console):
    c = client(console)
    h = token(console, "calendar:write")
    r = c.post("/api/v1/calendar", json={"start": "2026-11-25T08:00:00+07:00", "end": "2026-11-25T10:00:00+07:00",
                                         "title": "Họp giao ban", "leaders": ["Chủ tịch UBND xã"], "location": "Hội trường",
                                         "participants": "Toàn thể cán bộ", "preparer": "Văn phòng"}, headers=h)
    assert r.status_code == 201, r.text
    entry_id = r.json()["id"]
    row = console.db.execute("SELECT title, location, leaders, all_day FROM calendar_entries WHERE id=?", (entry_id,)).fetchone()
    assert row[0] == "Họp giao ban" and row[1] == "Hội trường" and "Chủ tịch UBND xã" in row[2] and row[3] == 0
    r = c.post("/api/v1/calendar", json={"start": "2026-11-27T00:00:00+07:00", "all_day": True, "title": "Tiếp công dân"}, headers=h)
    assert r.status_code == 201 and r.json()["all_day"] is True
    assert c.delete(f"/api/v1/calendar/{entry_id}", headers=h).status_code == 200
    assert console.db.execute("SELECT count(*) FROM calendar_entries WHERE id=?", (entry_id,)).fetchone()[0] == 0
    assert_error(c.delete(f"/api/v1/calendar/{entry_id}", headers=h), 404, "id")


@pytest.mark.parametrize("body, field", [
    ({"title": "Họp"}, "start"),
    ({"start": "2026-11-25T08:00:00+07:00"}, "title"),
    ({"start": "not a time", "title": "Họp"}, "start"),
    ({"start": "2026-11-25T08:00:00+07:00", "end": "2026-11-25T07:00:00+07:00", "title": "Họp"}, "end"),
    ({"start": "2026-11-25T08:00:00+07:00", "title": "Họp\x07"}, "title"),
    ({"start": "2026-11-25T08:00:00+07:00", "title": "Họp", "all_day": "yes"}, "all_day"),
    ({"start": "2026-11-25T08:00:00+07:00", "title": "Họp", "leaders": [1]}, "leaders"),
])
def test_a_bad_calendar_field_is_422_naming_it_and_stores_nothing(console, body, field):
    assert_error(client(console).post("/api/v1/calendar", json=body, headers=token(console, "calendar:write")), 422, field)
    assert console.db.execute("SELECT count(*) FROM calendar_entries").fetchone()[0] == 0


# -- the schema ----------------------------------------------------------------------------------
def test_the_openapi_schema_documents_bodies_responses_and_the_bearer_scheme(console):
    r = client(console).get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["components"]["securitySchemes"]["bearer"] == {**spec["components"]["securitySchemes"]["bearer"],
                                                                "type": "http", "scheme": "bearer"}
    paths = spec["paths"]
    assert paths and all(p.startswith("/api/v1/") for p in paths), list(paths)  # the API, not the console's pages
    put = paths["/api/v1/dossiers/{code}"]["put"]
    body = put["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"applicant", "procedure", "received_at", "due_at", "status"}
    assert body["properties"]["status"]["enum"] == ["received", "processing", "supplement_required", "ready", "returned"]
    assert body["properties"]["online"]["type"] == "boolean"
    assert {"200", "201", "401", "403", "413", "422"} <= set(put["responses"])
    err = put["responses"]["422"]["content"]["application/json"]["schema"]
    assert set(err["properties"]) == {"error", "field"}
    assert {"bearer": []} in put["security"]
    assert "requestBody" in paths["/api/v1/calendar"]["post"]
    assert "delete" in paths["/api/v1/calendar/{entry_id}"]
    assert "get" in paths["/api/v1/dossiers"] and "get" in paths["/api/v1/reports/attendance"]
    month = paths["/api/v1/reports/attendance"]["get"]
    assert {p["name"] for p in month["parameters"]} == {"month", "format"}


# -- the board on MQTT ---------------------------------------------------------------------------
def test_a_put_dossier_is_on_the_board_within_5_s(broker, spawn, tmp_path):
    data = tmp_path / "gateway"
    gw = start_gateway(spawn, broker, data)
    settings = broker.settings("gateway", data)
    db = open_db(data / "gateway.sqlite")
    secret = accounts.create_token(db, "mot-cua", ["dossiers:write"])
    app = create_app(settings, db_path=data / "gateway.sqlite")
    api = TestClient(app, base_url="http://127.0.0.1:8080")
    watcher = RawClient(broker.port, "technician", broker.credentials["technician"], client_id=f"test-web-api-{uuid.uuid4().hex[:6]}")
    try:
        watcher.subscribe(f"congso/{SITE}/state/dossiers")
        code = f"HS-{uuid.uuid4().hex[:8]}"
        now = datetime.now(TZ)
        body = {**GOOD, "received_at": now.isoformat(timespec="seconds"), "due_at": None, "status": "processing"}
        sent = time.monotonic()
        r = api.put(f"/api/v1/dossiers/{code}", json=body, headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 201, r.text
        seen: list[dict] = []

        def on_board() -> bool:
            while (msg := watcher.get(timeout=0.1)) is not None:
                seen.append(json.loads(msg.payload))
            return any(d["code"] == code for p in seen for d in p.get("dossiers", []))

        wait_for(on_board, 5, "the dossier on congso/<site>/state/dossiers", gw)
        assert time.monotonic() - sent < 5
        item = next(d for p in seen for d in p["dossiers"] if d["code"] == code)
        assert item["status"] == "processing"
        assert item["applicant"] == mask_name(GOOD["applicant"]) != GOOD["applicant"]  # masked for the TVs

        # An update (the status) is there within 5 s too.
        seen.clear()
        r = api.put(f"/api/v1/dossiers/{code}", json={**body, "status": "ready"}, headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200
        wait_for(lambda: on_board() and any(d["code"] == code and d["status"] == "ready"
                                            for p in seen for d in p.get("dossiers", [])), 5, "the new status on the board", gw)
    finally:
        watcher.close()
        db.conn.close()


def test_fields_the_contract_does_not_name_are_ignored(console):
    # A one-stop system sends what it has (its own ids, phone numbers): taken, not refused, not stored.
    c = client(console)
    body = {**GOOD, "so_dien_thoai": "0912345678", "ma_noi_bo": 17, "code": CODE}
    r = c.put(f"/api/v1/dossiers/{CODE}", json=body, headers=token(console, "dossiers:write"))
    assert r.status_code == 201, r.text
    assert "0912345678" not in str(dossiers.get(console.db, CODE))
    r = c.post("/api/v1/calendar", json={"start": "2026-11-25T08:00:00+07:00", "title": "Họp", "room": "A"},
               headers=token(console, "calendar:write"))
    assert r.status_code == 201, r.text


def test_the_cli_json_timesheet_is_the_apis(console):
    # OFFICE.md: `congso report attendance --month M --format json` and the API answer the same object.
    from conftest import run_congso

    console.staff("NV031", "Đỗ Văn Nam", "Văn phòng")
    month = "2026-10"
    api = client(console).get(f"/api/v1/reports/attendance?month={month}", headers=token(console, "reports:read"))
    assert api.status_code == 200, api.text
    out = run_congso("report", "attendance", "--month", month, "--format", "json",
                     CONGSO_DATA_DIR=str(console.data_dir), CONGSO_SITE_ID="ky-chau")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == api.json()
    assert len(api.json()["staff"][0]["days"]) == 31
    bad = run_congso("report", "attendance", "--day", "2026-10-01", "--format", "json",
                     CONGSO_DATA_DIR=str(console.data_dir))
    assert bad.returncode == 2 and "--format json is for --month" in bad.stderr
