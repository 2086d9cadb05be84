"""Proof of play at the gateway: ``play`` events through the real broker and gateway, and the report.

The first tests run the real gateway process on the real Mosquitto and a
fake TV that publishes with the TV node's own credentials (``tv-1``), as
the TV's outbox does: stored once across a re-publish and acked both
times; refused from a rating node; malformed payloads rejected and counted
without a crash. The report's numbers come from a hand-built day stored
through the gateway's real ingest, read back through ``congso report
plays`` (JSON, XLSX with openpyxl, CSV).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook

from congso.gateway import plays
from congso.gateway.db import open_db
from congso.gateway.ingest import Ingest
from congso.protocol import messages, topics
from congso.protocol.link import Incoming

from conftest import SITE, query, run_congso, start_gateway, wait_for
from mqtt_helpers import RawClient

TZ = "Asia/Ho_Chi_Minh"
DAY = "2026-11-24"


def play_event(item_id: str, ts: str, seconds: float, node: str = "tv-1", item_type: str = "slide",
               title: str | None = None, seq: int = 1) -> dict:
    return {"v": 1, "event_id": str(uuid.uuid4()), "node_id": node, "ts": ts, "clock_synced": True, "seq": seq,
            "item_type": item_type, "item_id": item_id, "seconds": seconds, "title": title, "media_sha256": None}


def now_ts() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- through the real gateway and broker --------------------------------------------------
class FakeTV:
    """Publishes as a node with its own broker credentials and collects the gateway's acks."""

    def __init__(self, broker, node: str):
        self.node = node
        self.client = RawClient(broker.port, node, broker.credentials[node])
        assert self.client.accepted, self.client.reason_code
        self.client.subscribe(topics.ack(SITE, node))

    def status(self, kind: str) -> None:
        """A retained online status, as the node's runtime publishes it (cleared again by ``close``)."""
        self._status = True
        self.client.publish(topics.status(SITE, self.node), messages.encode("status", {
            "v": 1, "node_id": self.node, "kind": kind, "state": "online", "version": "test", "since": now_ts()}),
            retain=True)

    def publish(self, leaf: str, payload) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        rc = self.client.publish(topics.node_topic(SITE, self.node, leaf), data)
        assert rc is not None and not rc.is_failure, rc

    def acks(self, timeout: float = 5.0) -> list[str]:
        """Every event id acked within ``timeout``."""
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self.client.get(min(left, 0.5))
            if msg is not None and msg.payload:
                out.extend(json.loads(msg.payload)["event_ids"])
        return out

    def wait_ack(self, event_id: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            msg = self.client.get(0.5)
            if msg is not None:
                seen.append((msg.topic, msg.payload))
            if msg is not None and msg.payload and event_id in json.loads(msg.payload)["event_ids"]:
                return
        raise AssertionError(f"no ack for {event_id} within {timeout} s; got {seen}")

    def close(self) -> None:
        if getattr(self, "_status", False):  # leave the shared broker as found
            self.client.publish(topics.status(SITE, self.node), b"", retain=True)
        self.client.close()


def _rejected(db, node: str) -> int:
    rows = query(db, "SELECT coalesce(rejected, 0) FROM nodes WHERE node_id=?", (node,))
    return rows[0][0] if rows else 0


def test_play_events_through_the_gateway_once_refused_and_rejected(broker, spawn, tmp_path):
    data = tmp_path / "gw"
    gw = start_gateway(spawn, broker, data)
    db = data / "gateway.sqlite"
    tv = FakeTV(broker, "tv-1")
    kiosk = FakeTV(broker, "kiosk-1")
    try:
        # One showing, published twice (the outbox re-sends until acked): one row, acked both times.
        event = play_event("tiem-chung", now_ts(), 12.5, title="Tiêm chủng mở rộng")
        tv.publish("play", event)
        tv.wait_ack(event["event_id"])
        tv.publish("play", event)
        tv.wait_ack(event["event_id"])
        assert query(db, "SELECT node_id, item_type, item_id, seconds, title, time_flag FROM play_events") == [
            ("tv-1", "slide", "tiem-chung", 12.5, "Tiêm chủng mở rộng", None)]

        # A play event from a rating kiosk (known as one by its status): refused, not acked, counted.
        kiosk.status("rating")
        wait_for(lambda: query(db, "SELECT kind FROM nodes WHERE node_id='kiosk-1'") == [("rating",)], 10,
                 "the kiosk registered as a rating node", gw)
        before = _rejected(db, "kiosk-1")
        wrong = play_event("tiem-chung", now_ts(), 5, node="kiosk-1")
        kiosk.publish("play", wrong)
        wait_for(lambda: _rejected(db, "kiosk-1") == before + 1, 10, "the kiosk's play refused", gw)
        assert wrong["event_id"] not in kiosk.acks(1.0)
        reasons = [r[0] for r in query(db, "SELECT reason FROM rejections WHERE sender='kiosk-1'")]
        assert any("kiosk-1 is a rating node: play events come only from signage nodes" in r for r in reasons), reasons

        # Malformed payloads: each rejected and counted, the gateway keeps going.
        before = _rejected(db, "tv-1")
        bad = [
            b"not json at all",
            b"\xff\xfe\x00",
            json.dumps({**play_event("x", now_ts(), 1), "seconds": -3}).encode(),
            json.dumps({**play_event("x", now_ts(), 1), "item_type": "poster"}).encode(),
            json.dumps({k: v for k, v in play_event("x", now_ts(), 1).items() if k != "item_id"}).encode(),
            json.dumps({**play_event("x", now_ts(), 1), "node_id": "tv-9"}).encode(),
            json.dumps({**play_event("x", now_ts(), 1), "seconds": "lâu"}).encode(),
            json.dumps([1, 2, 3]).encode(),
        ]
        for payload in bad:
            tv.publish("play", payload)
        wait_for(lambda: _rejected(db, "tv-1") == before + len(bad), 10, "every malformed play rejected", gw)
        good = play_event("board", now_ts(), 30, item_type="page", seq=2)
        tv.publish("play", good)
        tv.wait_ack(good["event_id"])
        assert gw.alive, gw.tail()
        assert query(db, "SELECT count(*) FROM play_events") == [(2,)]
        assert "Traceback" not in gw.tail(200_000)
    finally:
        tv.close()
        kiosk.close()
        gw.terminate()


# -- the report's numbers, from a hand-built day --------------------------------------------
def _store(db_file, events: list[dict], **ingest_options) -> None:
    db = open_db(db_file)
    items = [Incoming(topics.node_topic(SITE, e["node_id"], "play"), messages.dumps(e), time.monotonic())
             for e in events]
    result = Ingest(db, SITE, TZ, **ingest_options).process(items)
    assert result.stored == len(events) and result.rejected == 0, result
    db.conn.close()


@pytest.fixture
def hall_day(tmp_path):
    """24/11/2026 in the hall: two TVs, a slide renamed since, a slide deleted since, the board page."""
    db_file = tmp_path / "gateway.sqlite"
    normal = dict(max_behind_days=3650)  # the day is in the past: its events are not flagged for that
    _store(db_file, [
        play_event("tiem-chung", "2026-11-24T08:00:00+07:00", 10, title="Tiêm chủng (cũ)", seq=1),
        play_event("tiem-chung", "2026-11-24T09:30:00+07:00", 12.5, title="Tiêm chủng (cũ)", seq=2),
        play_event("tiem-chung", "2026-11-24T03:00:00Z", 7.5, title="Tiêm chủng (cũ)", seq=3),  # 10:00 office time
        play_event("board", "2026-11-24T08:01:00+07:00", 60, item_type="page", title="Bảng hồ sơ", seq=4),
        play_event("board", "2026-11-24T15:00:00+07:00", 60, item_type="page", title="Bảng hồ sơ", seq=5),
        play_event("khac", "2026-11-24T11:00:00+07:00", 20, title="+Lịch tiếp dân", seq=6),
        # Not that day in office time: 23/11 23:59 and 25/11 00:30 (24/11 17:30 UTC).
        play_event("tiem-chung", "2026-11-23T23:59:00+07:00", 10, seq=7),
        play_event("tiem-chung", "2026-11-24T17:30:00Z", 10, seq=8),
    ], **normal)
    # tv-2's clock was wrong: the gateway flags its showing, the report counts it and says so.
    _store(db_file, [play_event("tiem-chung", "2026-11-24T14:00:00+07:00", 15, node="tv-2", seq=1)],
           max_behind_days=0.001)
    conn = sqlite3.connect(db_file)
    with conn:
        conn.execute("INSERT INTO announcements(id, title, body, created_at) VALUES (?,?,?,?)",
                     ("tiem-chung", "=Tiêm chủng mở rộng", "Thứ Bảy 28/11", "2026-11-20T08:00:00+07:00"))
    conn.close()
    return tmp_path


def env_for(data_dir) -> dict:
    return {"CONGSO_DATA_DIR": str(data_dir), "CONGSO_SITE_ID": SITE, "CONGSO_SITE_NAME": "UBND xã Kỳ Châu",
            "CONGSO_SITE_TIMEZONE": TZ}


EXPECTED = [  # (node, type, id, title, showings, seconds, first, last, flagged)
    ("tv-1", "page", "board", "Bảng hồ sơ", 2, 120.0, "2026-11-24T08:01:00+07:00", "2026-11-24T15:00:00+07:00", 0),
    ("tv-1", "slide", "khac", "+Lịch tiếp dân", 1, 20.0, "2026-11-24T11:00:00+07:00", "2026-11-24T11:00:00+07:00", 0),
    ("tv-1", "slide", "tiem-chung", "=Tiêm chủng mở rộng", 3, 30.0, "2026-11-24T08:00:00+07:00",
     "2026-11-24T10:00:00+07:00", 0),
    ("tv-2", "slide", "tiem-chung", "=Tiêm chủng mở rộng", 1, 15.0, "2026-11-24T14:00:00+07:00",
     "2026-11-24T14:00:00+07:00", 1),
]


def test_report_numbers_for_a_hand_built_day(hall_day):
    out = run_congso("report", "plays", "--day", "24/11/2026", "--json", **env_for(hall_day))
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert (rep["from"], rep["to"]) == (DAY, DAY)
    got = [(r["node"], r["item_type"], r["item_id"], r["title"], r["showings"], r["seconds"], r["first_start"],
            r["last_start"], r["time_flagged"]) for r in rep["rows"]]
    assert got == EXPECTED
    assert all(r["day"] == DAY for r in rep["rows"])
    assert rep["totals"] == {"showings": 7, "seconds": 185.0, "time_flagged": 1}

    # One slide on one TV: "was it shown that day, how often, how long?"
    out = run_congso("report", "plays", "--day", DAY, "--item", "tiem-chung", "--node", "tv-1", "--json",
                     **env_for(hall_day))
    rep = json.loads(out.stdout)
    assert [(r["node"], r["showings"], r["seconds"]) for r in rep["rows"]] == [("tv-1", 3, 30.0)]

    # Over three days: the showings outside the day appear on their own days.
    out = run_congso("report", "plays", "--from", "2026-11-23", "--to", "25/11/2026", "--item", "tiem-chung",
                     "--json", **env_for(hall_day))
    rep = json.loads(out.stdout)
    assert [(r["day"], r["node"], r["showings"]) for r in rep["rows"]] == [
        ("2026-11-23", "tv-1", 1), ("2026-11-24", "tv-1", 3), ("2026-11-24", "tv-2", 1), ("2026-11-25", "tv-1", 1)]

    db = open_db(hall_day / "gateway.sqlite")
    answer = plays.shown(db, "tiem-chung", DAY, tz=TZ)
    assert answer["shown"] and answer["title"] == "=Tiêm chủng mở rộng"
    assert (answer["showings"], answer["seconds"]) == (4, 45.0)
    assert {n: (v["showings"], v["seconds"]) for n, v in answer["nodes"].items()} == {
        "tv-1": (3, 30.0), "tv-2": (1, 15.0)}
    assert plays.shown(db, "tiem-chung", "2026-11-26", tz=TZ)["shown"] is False


def test_report_xlsx_and_csv_keep_titles_as_text(hall_day, tmp_path):
    book = tmp_path / "chieu.xlsx"
    out = run_congso("report", "plays", "--day", DAY, "--xlsx", str(book), **env_for(hall_day))
    assert out.returncode == 0, out.stderr
    assert "tiem-chung" in out.stdout and "showings" in out.stdout  # English headers on the terminal
    assert "1 showing(s) came from a TV whose clock was far off" in out.stderr
    ws = load_workbook(book).active
    values = list(ws.iter_rows(values_only=True))
    assert values[0][0] == "BÁO CÁO NỘI DUNG ĐÃ CHIẾU TRÊN MÀN HÌNH"
    assert values[1][0] == "Đơn vị: UBND xã Kỳ Châu" and values[2][0] == "Ngày 24/11/2026"
    assert "1 lần chiếu do màn hình có đồng hồ sai gửi về" in values[3][0]
    header = next(i for i, r in enumerate(values) if r[0] == "Ngày")
    assert values[header][:8] == ("Ngày", "Màn hình", "Loại", "Mã nội dung", "Tiêu đề", "Lần chiếu", "Tổng thời gian",
                                  "Tổng số giây")
    body = values[header + 1:]
    assert body[2][:8] == ("24/11/2026", "tv-1", "Thông báo", "tiem-chung", "=Tiêm chủng mở rộng", 3, "0:00:30", 30)
    assert body[0][2] == "Trang" and body[0][6] == "0:02:00"
    assert body[-1][0] == "Tổng cộng" and body[-1][5:8] == (7, "0:03:05", 185)
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type != "f" for c in cells)
    titles = {c.value for c in cells if isinstance(c.value, str) and c.value[:1] in "=+"}
    assert titles == {"=Tiêm chủng mở rộng", "+Lịch tiếp dân"}

    out = run_congso("report", "plays", "--day", DAY, "--csv", "-", **env_for(hall_day))
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[0][:6] == ["Ngày", "Màn hình", "Loại", "Mã nội dung", "Tiêu đề", "Lần chiếu"]
    assert [r[4] for r in rows[1:-1]] == ["Bảng hồ sơ", "'+Lịch tiếp dân", "'=Tiêm chủng mở rộng",
                                           "'=Tiêm chủng mở rộng"]


def test_cli_errors_say_what_to_fix(hall_day):
    env = env_for(hall_day)
    out = run_congso("report", "plays", "--day", "31/11/2026", **env)
    assert out.returncode != 0 and "--day: '31/11/2026' is not a date (dd/mm/yyyy)" in out.stderr
    out = run_congso("report", "plays", "--from", "2026-11-25", "--to", "2026-11-24", **env)
    assert out.returncode != 0 and "--from 2026-11-25 is after --to 2026-11-24" in out.stderr
    out = run_congso("report", "plays", "--from", "2026-11-25", **env)
    assert out.returncode != 0 and "--from and --to go together" in out.stderr
    out = run_congso("report", "plays", "--day", "2026-11-20", **env)
    assert out.returncode == 0 and out.stdout.strip() == "nothing shown 2026-11-20"
    out = run_congso("report", "plays", "--help", **env)
    assert "congso report plays --day 24/11/2026 --item tiem-chung" in out.stdout
