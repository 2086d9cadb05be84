"""Desk duty (nhận quầy) at the gateway: card taps from the kiosk, the console's and the CLI's take/leave.

The first test runs the real gateway process on the real Mosquitto; a fake
kiosk publishes ``duty`` events with the kiosk node's own credentials
(``kiosk-1``) as its outbox does, and reads ``state/duty`` as the kiosk
does. The officers are set up the way an office does it: staff, a console
user with the desk given, a staff card.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from congso.gateway import accounts, duty, staff
from congso.gateway.db import open_db
from congso.gateway.state import Context
from congso.protocol import clock, messages, topics
from congso.protocol import settings as settings_mod

from conftest import SITE, query, run_congso, start_gateway, wait_for
from mqtt_helpers import RawClient
from test_plays import FakeTV

TZ = "Asia/Ho_Chi_Minh"
ZONE = ZoneInfo(TZ)
DESK, OTHER = "mot-cua-1", "mot-cua-2"
CARD = "04A1B2C3"


def office(db_file) -> None:
    """NV003 and NV005 may hold mot-cua-1, NV004 only mot-cua-2; NV003 has a staff card."""
    db = open_db(db_file)
    for sid, name in (("NV003", "Lê Thị Cúc"), ("NV004", "Trần Văn Dũng"), ("NV005", "Nguyễn Văn An")):
        staff.add(db, sid, name)
    for user, sid, desk in (("cuc", "NV003", DESK), ("dung", "NV004", OTHER), ("an", "NV005", DESK)):
        accounts.add_user(db, user, "officer", "mat-khau-thu-nghiem-10", sid)
        accounts.set_desks(db, user, [desk])
    staff.assign_card(db, "NV003", CARD, TZ)
    db.conn.close()


def tap(staff_id: str, action: str, ts: datetime, desk: str = DESK, seq: int = 1, card: str | None = None) -> dict:
    return {"v": 1, "event_id": str(uuid.uuid4()), "node_id": "kiosk-1", "ts": ts.isoformat(timespec="seconds"),
            "clock_synced": True, "seq": seq, "desk_id": desk, "action": action, "staff_id": staff_id,
            "card_hash": card}


def kiosk_at(kiosk, desk: str = DESK) -> None:
    """A rating node's status and its health saying which desk it rates (as the real kiosk's does)."""
    kiosk.status("rating")
    kiosk.publish("health", {"v": 1, "node_id": kiosk.node, "ts": clock.now(TZ).isoformat(timespec="seconds"),
                             "uptime_s": 1.0, "outbox": 0, "clock_synced": True, "devices": {}, "desk_id": desk})


def retained_duty(broker, timeout: float = 10.0, until=lambda d: True) -> dict:
    """state/duty as a node reads it, retained (as tv-1: the broker gives each login one connection,
    and the fake kiosk holds kiosk-1's)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        reader = RawClient(broker.port, "tv-1", broker.credentials["tv-1"])
        try:
            reader.subscribe(topics.state(SITE, "duty"))
            msg = reader.get(2.0)
            if msg is not None and msg.payload:
                last = messages.decode(messages.state_kind("duty"), msg.payload)
                if until(last):
                    return last
        finally:
            reader.close()
        time.sleep(0.2)
    raise AssertionError(f"state/duty never became as expected; last: {last}")


def outcome(db_file, event_id: str) -> str:
    return query(db_file, "SELECT outcome FROM duty_events WHERE event_id=?", (event_id.lower(),))[0][0]


def holder(db_file, desk: str = DESK):
    rows = query(db_file, "SELECT officer_id, via FROM desk_duty WHERE desk_id=?", (desk,))
    return rows[0] if rows else None


def test_card_taps_through_the_gateway_and_the_console_after_them(broker, spawn, tmp_path):
    data = tmp_path / "gw"
    gw = start_gateway(spawn, broker, data)
    db_file = data / "gateway.sqlite"
    office(db_file)
    kiosk = FakeTV(broker, "kiosk-1")
    env = {"CONGSO_DATA_DIR": str(data), "CONGSO_SITE_ID": SITE, "CONGSO_SITE_TIMEZONE": TZ}
    try:
        kiosk_at(kiosk)
        # The officers and their cards reach the kiosk as hashes.
        state = retained_duty(broker, until=lambda d: any(o["staff_id"] == "NV003" and o["cards"]
                                                          for o in d["officers"]))
        cuc = next(o for o in state["officers"] if o["staff_id"] == "NV003")
        assert cuc == {"staff_id": "NV003", "name": "Lê Thị Cúc", "desks": [DESK], "cards": [duty.card_hash(SITE, CARD)]}
        assert CARD not in json.dumps(state) and state["desks"][DESK] is None

        # NV003 taps in at the kiosk: the desk is theirs, state/duty says so, the audit too.
        now = clock.now(TZ)
        taken = tap("NV003", "take", now - timedelta(seconds=5), card=duty.card_hash(SITE, CARD), seq=1)
        kiosk.publish("duty", taken)
        kiosk.wait_ack(taken["event_id"])
        assert outcome(db_file, taken["event_id"]) == "taken"
        assert holder(db_file) == ("NV003", "card:kiosk-1")
        state = retained_duty(broker, until=lambda d: d["desks"].get(DESK) is not None)
        assert state["desks"][DESK]["officer_id"] == "NV003" and state["desks"][DESK]["officer_name"] == "Lê Thị Cúc"
        assert state["desks"][DESK]["via"] == "card:kiosk-1"
        audit = query(db_file, "SELECT actor, via, action, target, detail FROM audit_log WHERE action LIKE 'desks.%'")
        assert [(a, v, act, t) for a, v, act, t, _ in audit] == [("kiosk-1", "gateway", "desks.take", DESK)]
        assert json.loads(audit[0][4])["event_id"] == taken["event_id"].lower()

        # NV004's card at a desk not given to them: refused, said why, nothing changes.
        foreign = tap("NV004", "take", now, seq=2)
        kiosk.publish("duty", foreign)
        kiosk.wait_ack(foreign["event_id"])  # acked: stored once, never re-sent
        assert outcome(db_file, foreign["event_id"]) == f"refused: NV004 may not hold desk {DESK}"
        assert holder(db_file) == ("NV003", "card:kiosk-1")

        # kiosk-1 rates DESK: with its own credentials it cannot take another desk for NV004 (given OTHER).
        elsewhere = tap("NV004", "take", now, desk=OTHER, seq=20)
        kiosk.publish("duty", elsewhere)
        kiosk.wait_ack(elsewhere["event_id"])
        assert outcome(db_file, elsewhere["event_id"]) == f"refused: kiosk-1 rates desk {DESK}, not {OTHER}"
        assert holder(db_file, OTHER) is None

        # The console (here the CLI) gives the desk to NV005 now; then NV003's older tap out arrives late.
        out = run_congso("desk", "take", DESK, "--officer", "NV005", **env)
        assert out.returncode == 0 and f"desk {DESK} taken by Nguyễn Văn An (NV005)" in out.stdout, out.stderr
        late = tap("NV003", "take", now - timedelta(seconds=2), seq=3)
        kiosk.publish("duty", late)
        kiosk.wait_ack(late["event_id"])
        assert outcome(db_file, late["event_id"]) == "stale: the desk changed hands after this"
        assert holder(db_file) == ("NV005", "cli")
        state = retained_duty(broker, until=lambda d: (d["desks"].get(DESK) or {}).get("officer_id") == "NV005")
        assert state["desks"][DESK]["via"] == "cli"

        # Freed from the console; a tap older than that changes nothing either.
        out = run_congso("desk", "leave", DESK, **env)
        assert out.returncode == 0 and f"desk {DESK} left by Nguyễn Văn An (NV005)" in out.stdout, out.stderr
        older = tap("NV003", "take", now - timedelta(seconds=1), seq=4)
        kiosk.publish("duty", older)
        kiosk.wait_ack(older["event_id"])
        assert outcome(db_file, older["event_id"]) == "stale: the desk was left after this"
        assert holder(db_file) is None
        retained_duty(broker, until=lambda d: d["desks"].get(DESK) is None)

        # A kiosk whose clock runs a day ahead: the tap counts as of its arrival, and the next change still works.
        ahead = tap("NV003", "take", clock.now(TZ) + timedelta(days=1), seq=5)
        kiosk.publish("duty", ahead)
        kiosk.wait_ack(ahead["event_id"])
        assert outcome(db_file, ahead["event_id"]) == "taken"
        since = query(db_file, "SELECT since FROM desk_duty WHERE desk_id=?", (DESK,))[0][0]
        assert messages.parse_ts(since) <= clock.now(TZ)
        out = run_congso("desk", "leave", DESK, "--officer", "NV005", **env)
        assert out.returncode != 0 and f"desk {DESK} is held by Lê Thị Cúc, not by NV005" in out.stderr
        out = run_congso("desk", "duty", "--json", **env)
        rows = {r["desk_id"]: r for r in map(json.loads, out.stdout.splitlines())}
        assert rows[DESK]["officer_id"] == "NV003" and rows[OTHER]["officer_id"] is None
        out = run_congso("desk", "leave", DESK, "--officer", "NV003", **env)
        assert out.returncode == 0, out.stderr
        out = run_congso("desk", "duty", **env)
        assert out.stdout.splitlines()[1].split()[:3] == [DESK, "-", "(free)"]

        # Malformed taps: rejected and counted, nothing stored, the gateway goes on.
        rejected = query(db_file, "SELECT coalesce(rejected, 0) FROM nodes WHERE node_id='kiosk-1'")[0][0]
        stored = query(db_file, "SELECT count(*) FROM duty_events")
        for payload in ({**tap("NV003", "swap", clock.now(TZ), seq=6)},
                        {k: v for k, v in tap("NV003", "take", clock.now(TZ), seq=7).items() if k != "staff_id"},
                        {**tap("NV003", "take", clock.now(TZ), seq=8), "desk_id": None},
                        {**tap("NV003", "take", clock.now(TZ), seq=9), "staff_id": "NV003\x07"}):
            kiosk.publish("duty", payload)
        kiosk.publish("duty", b"{")
        wait_for(lambda: query(db_file, "SELECT rejected FROM nodes WHERE node_id='kiosk-1'")[0][0] == rejected + 5,
                 10, "the malformed taps rejected", gw)
        assert query(db_file, "SELECT count(*) FROM duty_events") == stored

        actions = [r[0] for r in query(db_file, "SELECT action FROM audit_log WHERE action LIKE 'desks.%' ORDER BY id")]
        assert actions == ["desks.take", "desks.take", "desks.leave", "desks.take", "desks.leave"]
        assert gw.alive and "Traceback" not in gw.tail(200_000)
    finally:
        kiosk.close()
        gw.terminate()


def test_cli_refuses_an_officer_without_the_desk(tmp_path):
    office(tmp_path / "gateway.sqlite")
    env = {"CONGSO_DATA_DIR": str(tmp_path), "CONGSO_SITE_ID": SITE}
    out = run_congso("desk", "take", DESK, "--officer", "NV004", **env)
    assert out.returncode != 0
    assert f"NV004 may not hold desk {DESK}: give the desk to their console user (congso web user desks) first" in out.stderr
    out = run_congso("desk", "take", "Quầy 1", "--officer", "NV003", **env)
    assert out.returncode != 0 and "invalid desk id 'Quầy 1'" in out.stderr
    out = run_congso("desk", "leave", DESK, **env)
    assert out.returncode != 0 and f"nobody holds desk {DESK}" in out.stderr
    assert query(tmp_path / "gateway.sqlite", "SELECT count(*) FROM audit_log WHERE action LIKE 'desks.%'") == [(0,)]


def test_a_desk_held_overnight_is_freed_next_morning(tmp_path):
    db_file = tmp_path / "gateway.sqlite"
    office(db_file)
    db = open_db(db_file)
    evening = datetime(2026, 11, 24, 17, 5, tzinfo=ZONE)
    duty.take(db, DESK, "NV003", evening, actor=("cuc", "web"))
    settings = settings_mod.load(environ={"CONGSO_SITE_ID": SITE})
    with db.conn:  # the same evening: still held
        duty.release_overnight(db, Context(SITE, TZ, evening + timedelta(hours=1), settings))
    assert duty.holders(db)[DESK]["officer_id"] == "NV003"
    morning = datetime(2026, 11, 25, 7, 0, tzinfo=ZONE)
    with db.conn:
        duty.release_overnight(db, Context(SITE, TZ, morning, settings))
    assert duty.holders(db) == {}
    row = db.execute("SELECT actor, via, action, detail FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    assert row[:3] == ("congso-gateway", "gateway", "desks.leave")
    assert json.loads(row[3])["via"] == "overnight" and json.loads(row[3])["officer_id"] == "NV003"
    assert duty.build(db, Context(SITE, TZ, morning, settings))["duty"]["desks"] == {DESK: None, OTHER: None}


@pytest.mark.parametrize("via,text", [("card:kiosk-1", "qua thẻ"), ("console", "qua trang quản trị"),
                                      ("cli", "qua dòng lệnh")])
def test_who_holds_a_desk_in_words(via, text):
    now = datetime(2026, 11, 24, 10, 0, tzinfo=ZONE)
    row = {"officer_name": "Nguyễn Văn An", "since": "2026-11-24T01:02:00Z", "via": via}
    assert duty.describe_vi(row, now) == f"Nguyễn Văn An từ 08:02, {text}"
    assert duty.describe_vi({**row, "since": "2026-11-23T08:02:00+07:00"}, now).startswith(
        "Nguyễn Văn An từ 08:02 23/11/2026")


def test_a_holder_who_may_no_longer_hold_the_desk_is_freed(tmp_path):
    db_file = tmp_path / "gateway.sqlite"
    office(db_file)
    db = open_db(db_file)
    now = datetime(2026, 11, 24, 9, 0, tzinfo=ZONE)
    duty.take(db, DESK, "NV003", now, actor=("admin", "web"))
    duty.take(db, OTHER, "NV004", now, actor=("admin", "web"))
    ctx = Context(SITE, TZ, now + timedelta(minutes=5), settings_mod.load(environ={"CONGSO_SITE_ID": SITE}))
    accounts.set_desks(db, "cuc", [])  # the desk is taken from NV003's console user
    with db.conn:
        duty.release_not_allowed(db, ctx)
    assert {d: r["officer_id"] for d, r in duty.holders(db).items()} == {OTHER: "NV004"}
    detail = json.loads(db.execute("SELECT detail FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()[0])
    assert detail["via"] == "no longer allowed" and detail["officer_id"] == "NV003"
