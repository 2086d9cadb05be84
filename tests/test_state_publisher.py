"""The gateway's retained-state publisher: only what changed goes out, versions only grow.

Every test builds its publisher from a list of domains and a clock of its
own: nothing is patched (no module globals, no ``time.monotonic``).
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
from datetime import datetime
from zoneinfo import ZoneInfo

import congso.gateway
from congso.gateway import domains, state, work_calendar
from congso.gateway.db import open_db
from congso.protocol import messages
from congso.protocol import settings as settings_mod

TZ = "Asia/Ho_Chi_Minh"
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=ZoneInfo(TZ))  # a Tuesday


class FakeClock:
    """The office's time and a monotonic clock that move only when a test says so."""

    def __init__(self, now: datetime = NOW, mono: float = 1000.0):
        self.wall, self.mono = now, mono

    def clock(self) -> state.Clock:
        return state.Clock(now=lambda tz: self.wall.astimezone(ZoneInfo(tz)), monotonic=lambda: self.mono)


def _publisher(tmp_path, sent, domain_list, clock: FakeClock | None = None):
    settings = settings_mod.load(environ={"CONGSO_DATA_DIR": str(tmp_path), "CONGSO_SITE_ID": "ky-chau"})
    db = open_db(tmp_path / "gateway.sqlite")
    pub = state.Publisher(db, settings, lambda topic, data, retain: sent.append((topic, data, retain)),
                          domain_list, clock=(clock or FakeClock()).clock())
    return db, pub


def _one(builder, name="test") -> list[state.Domain]:
    return [state.Domain(name, builders=(builder,))]


def test_changes_are_published_once_with_growing_versions(tmp_path):
    items = [{"id": "a1", "title": "Lịch tiếp công dân", "body": "Thứ Năm", "qr_url": None, "valid_from": None, "valid_until": None}]
    board = _one(lambda db, ctx: {"announcements": {"items": list(items)}})
    sent = []
    db, pub = _publisher(tmp_path, sent, board)
    assert pub.rebuild() == ["announcements"]
    topic, data, retain = sent[-1]
    assert topic == "congso/ky-chau/state/announcements" and retain
    assert json.loads(data)["version"] == 1
    assert pub.rebuild() == []  # nothing changed: nothing sent
    items.append({**items[0], "id": "a2"})
    assert pub.rebuild() == ["announcements"]
    assert json.loads(sent[-1][1])["version"] == 2

    # A restarted gateway re-publishes once, with the same version (same content).
    sent.clear()
    db2, pub2 = _publisher(tmp_path, sent, board)
    assert pub2.rebuild() == ["announcements"]
    assert json.loads(sent[-1][1])["version"] == 2


def test_builders_get_the_publishers_clock(tmp_path):
    seen = []
    fake = FakeClock(datetime(2026, 12, 31, 23, 59, tzinfo=ZoneInfo(TZ)))
    _, pub = _publisher(tmp_path, [], _one(lambda db, ctx: seen.append(ctx.now) or {}), fake)
    pub.rebuild()
    assert seen == [fake.wall]
    assert seen[0].tzinfo.key == TZ


def test_a_desk_session_is_cleared_with_an_empty_retained_payload(tmp_path):
    session = {"session_id": "s1", "desk_id": "mot-cua-1", "officer_id": "NV001", "officer_name": "Lê Thị Hoa",
               "dossier_code": None, "opened_at": "2026-11-23T08:00:00+07:00", "expires_at": "2026-11-23T08:15:00+07:00"}
    current = {"desk/mot-cua-1": session}
    sent = []
    _, pub = _publisher(tmp_path, sent, _one(lambda db, ctx: dict(current)))
    pub.rebuild()
    assert sent[-1][0] == "congso/ky-chau/state/desk/mot-cua-1" and json.loads(sent[-1][1])["session_id"] == "s1"
    current["desk/mot-cua-1"] = None
    pub.rebuild()
    assert sent[-1] == ("congso/ky-chau/state/desk/mot-cua-1", b"", True)
    assert pub.rebuild() == []


def test_a_failing_builder_does_not_stop_the_others(tmp_path):
    def broken(db, ctx):
        raise RuntimeError("boom")

    domain_list = [state.Domain("broken", builders=(broken,)),
                   state.Domain("board", builders=(lambda db, ctx: {"announcements": {"items": []}},))]
    _, pub = _publisher(tmp_path, [], domain_list)
    assert pub.rebuild() == ["announcements"]


def _oversized_roster(db, ctx):
    # More than a retained message may carry (64 KiB): encoding it fails.
    staff = [{"staff_id": f"NV{i:05d}", "name": "Nguyễn Văn An", "cards": [f"04A1{i:04X}"], "fingers": {}}
             for i in range(3000)]
    return {"roster": {"staff": staff}}


def test_a_roster_that_cannot_be_published_does_not_stop_the_calendar(tmp_path, caplog):
    # The fault: the roster's publish raised, and the calendar built after it never updated.
    fake = FakeClock()
    sent = []
    domain_list = [state.Domain("staff", builders=(_oversized_roster,)), work_calendar.DOMAIN]
    db, pub = _publisher(tmp_path, sent, domain_list, fake)
    work_calendar.add(db, start="2026-11-24 14:00", title="Họp giao ban", tz=TZ, leaders=["Chủ tịch UBND xã"])
    with caplog.at_level(logging.ERROR, logger="congso.gateway.state"):
        assert pub.rebuild() == ["calendar"]
    calendar = messages.decode("calendar", sent[-1][1])
    assert [e["title"] for e in calendar["entries"]] == ["Họp giao ban"]
    assert not any(topic.endswith("/roster") for topic, _, _ in sent)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "staff" in errors[0].getMessage() and "roster" in errors[0].getMessage()

    # The next change to the calendar goes out too, while the roster still fails.
    work_calendar.add(db, start="2026-11-25", title="Tiếp công dân", tz=TZ)
    assert pub.rebuild() == ["calendar"]


def test_a_failing_domain_is_logged_once_a_minute_with_its_name(tmp_path, caplog):
    def broken(db, ctx):
        raise RuntimeError("the disk is full")

    fake = FakeClock()
    _, pub = _publisher(tmp_path, [], [state.Domain("calendar", builders=(broken,))], fake)
    with caplog.at_level(logging.DEBUG, logger="congso.gateway.state"):
        for _ in range(4 * 30):  # half a minute of ticks
            pub.rebuild()
            fake.mono += state.TICK_S
        fake.mono += state.FAILURE_LOG_EVERY_S
        pub.rebuild()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2
    assert all("calendar" in r.getMessage() and r.exc_info and "the disk is full" in str(r.exc_info[1]) for r in errors)


def test_figures_that_change_with_every_event_are_paced(tmp_path):
    count = {"n": 0}
    figures = _one(lambda db, ctx: {"presence": {
        "date": "2026-11-24", "staff_active": 12, "checked_in": count["n"], "unknown_cards": 0,
        "events": count["n"], "unsynced_events": 0}})
    fake = FakeClock()
    sent = []
    _, pub = _publisher(tmp_path, sent, figures, fake)
    assert pub.tick() == ["presence"]
    for _ in range(5):  # a morning storm: a new check-in every half second
        count["n"] += 1
        fake.mono += 0.5
        pub.poke()
        assert pub.tick() == []
    fake.mono += state.MIN_INTERVAL_S["presence"]
    pub.poke()
    assert pub.tick() == ["presence"]
    assert json.loads(sent[-1][1])["checked_in"] == 5  # the latest figures, once
    assert len(sent) == 2


def test_every_domain_module_is_in_the_one_list():
    # A module that describes a domain but is left out of domains.DOMAINS would silently publish nothing.
    described = []
    for info in pkgutil.iter_modules(congso.gateway.__path__):
        module = importlib.import_module(f"congso.gateway.{info.name}")
        if isinstance(getattr(module, "DOMAIN", None), state.Domain):
            described.append(module.DOMAIN)
    assert described and all(any(d is listed for listed in domains.DOMAINS) for d in described)
    names = [d.name for d in domains.DOMAINS]
    assert len(names) == len(set(names))


def test_the_gateways_domains_publish_every_board_from_an_empty_database(tmp_path):
    sent = []
    _, pub = _publisher(tmp_path, sent, domains.DOMAINS)
    names = set(pub.rebuild())
    assert {"roster", "presence", "dossiers", "calendar", "announcements", "ratings"} <= names
    assert set(state.reply_hooks(domains.DOMAINS)) >= {"enroll", "export_finger", "import_finger", "delete_finger"}


def test_the_gateways_reply_hooks_come_from_the_domains_list(tmp_path):
    # An enrolment's reply, handled by the hooks the gateway takes from domains.DOMAINS:
    # the finger is recorded and carried to the other door.
    from congso.gateway import commands, staff

    db = open_db(tmp_path / "gateway.sqlite")
    staff.add(db, "NV001", "Lê Thị Hoa")
    with db.conn:
        for door in ("cong-chinh", "cong-phu"):
            db.conn.execute("INSERT INTO nodes(node_id, kind) VALUES (?, 'attendance')", (door,))
    cmd_id = commands.queue(db, "cong-chinh", "enroll", {"staff_id": "NV001"})
    commands.run_reply_hooks(db, [{"cmd_id": cmd_id, "ok": True, "result": {"slot": 3}}],
                             state.reply_hooks(domains.DOMAINS))
    assert db.execute("SELECT node_id, slot, staff_id FROM finger_slots").fetchall() == [("cong-chinh", 3, "NV001")]
    carry = db.execute("SELECT node_id, args, context FROM outgoing_commands WHERE cmd='export_finger'").fetchall()
    assert [(node, json.loads(args), json.loads(context)["carry_to"]) for node, args, context in carry] == [
        ("cong-chinh", {"slot": 3}, ["cong-phu"])]
