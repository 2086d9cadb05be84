"""The gateway's retained-state publisher: only what changed goes out, versions only grow."""

from __future__ import annotations

import json

from congso.gateway import state
from congso.gateway.db import open_db
from congso.protocol import settings as settings_mod


# The domain modules register their builders on import (open_db imports
# them); load them now, so that patching the lists below really replaces them.
state.load_domains()


def _publisher(tmp_path, sent):
    settings = settings_mod.load(environ={"CONGSO_DATA_DIR": str(tmp_path), "CONGSO_SITE_ID": "ky-chau"})
    db = open_db(tmp_path / "gateway.sqlite")
    return db, state.Publisher(db, settings, lambda topic, data, retain: sent.append((topic, data, retain)))


def test_changes_are_published_once_with_growing_versions(tmp_path, monkeypatch):
    items = [{"id": "a1", "title": "Lịch tiếp công dân", "body": "Thứ Năm", "qr_url": None, "valid_from": None, "valid_until": None}]
    monkeypatch.setattr(state, "BUILDERS", [lambda db, ctx: {"announcements": {"items": list(items)}}])
    monkeypatch.setattr(state, "MAINTENANCE", [])
    sent = []
    db, pub = _publisher(tmp_path, sent)
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
    db2, pub2 = _publisher(tmp_path, sent)
    assert pub2.rebuild() == ["announcements"]
    assert json.loads(sent[-1][1])["version"] == 2


def test_a_desk_session_is_cleared_with_an_empty_retained_payload(tmp_path, monkeypatch):
    session = {"session_id": "s1", "desk_id": "mot-cua-1", "officer_id": "NV001", "officer_name": "Lê Thị Hoa",
               "dossier_code": None, "opened_at": "2026-11-23T08:00:00+07:00", "expires_at": "2026-11-23T08:15:00+07:00"}
    current = {"desk/mot-cua-1": session}
    monkeypatch.setattr(state, "BUILDERS", [lambda db, ctx: dict(current)])
    monkeypatch.setattr(state, "MAINTENANCE", [])
    sent = []
    _, pub = _publisher(tmp_path, sent)
    pub.rebuild()
    assert sent[-1][0] == "congso/ky-chau/state/desk/mot-cua-1" and json.loads(sent[-1][1])["session_id"] == "s1"
    current["desk/mot-cua-1"] = None
    pub.rebuild()
    assert sent[-1] == ("congso/ky-chau/state/desk/mot-cua-1", b"", True)
    assert pub.rebuild() == []


def test_a_failing_builder_does_not_stop_the_others(tmp_path, monkeypatch):
    def broken(db, ctx):
        raise RuntimeError("boom")

    monkeypatch.setattr(state, "BUILDERS", [broken, lambda db, ctx: {"announcements": {"items": []}}])
    monkeypatch.setattr(state, "MAINTENANCE", [])
    sent = []
    _, pub = _publisher(tmp_path, sent)
    assert pub.rebuild() == ["announcements"]


def test_figures_that_change_with_every_event_are_paced(tmp_path, monkeypatch):
    count = {"n": 0}
    monkeypatch.setattr(state, "BUILDERS", [lambda db, ctx: {"presence": {
        "date": "2026-11-24", "staff_active": 12, "checked_in": count["n"], "unknown_cards": 0,
        "events": count["n"], "unsynced_events": 0}}])
    monkeypatch.setattr(state, "MAINTENANCE", [])
    clock = {"t": 1000.0}
    monkeypatch.setattr(state.time, "monotonic", lambda: clock["t"])
    sent = []
    _, pub = _publisher(tmp_path, sent)
    assert pub.tick(clock["t"]) == ["presence"]
    for _ in range(5):  # a morning storm: a new check-in every half second
        count["n"] += 1
        clock["t"] += 0.5
        pub.poke()
        assert pub.tick(clock["t"]) == []
    clock["t"] += state.MIN_INTERVAL_S["presence"]
    pub.poke()
    assert pub.tick(clock["t"]) == ["presence"]
    assert json.loads(sent[-1][1])["checked_in"] == 5  # the latest figures, once
    assert len(sent) == 2
