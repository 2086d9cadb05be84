"""The wire contract without a broker: settings, topics, message validation, the outbox."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from congso.protocol import link, messages, settings, topics
from congso.protocol.outbox import Outbox, OutboxError

NOW = "2026-11-23T07:45:00.250+07:00"


def attendance_event(**over) -> dict:
    event = {
        "v": 1,
        "event_id": str(uuid.uuid4()),
        "node_id": "door-1",
        "ts": NOW,
        "clock_synced": True,
        "seq": 7,
        "method": "card",
        "credential": "04A1B2C3D4E5F6",
        "staff_id": "NV001",
        "match_score": None,
    }
    event.update(over)
    return event


def rating_event(**over) -> dict:
    event = {
        "v": 1,
        "event_id": str(uuid.uuid4()),
        "node_id": "kiosk-1",
        "ts": NOW,
        "clock_synced": False,
        "seq": 1,
        "desk_id": "mot-cua-1",
        "level": "dissatisfied",
        "reasons": ["thoi_gian", "thai_do"],
        "session_id": None,
        "officer_id": "NV002",
        "dossier_code": "000.00.12.H23-261123-0001",
    }
    event.update(over)
    return event


# -- settings ---------------------------------------------------------------------
def test_settings_defaults_run_without_a_file():
    s = settings.load(environ={})
    assert s.mqtt.port == 1883
    assert s.site.timezone == "Asia/Ho_Chi_Minh"
    assert s.source is None


def test_settings_file_then_environment(tmp_path):
    path = tmp_path / "congso.toml"
    path.write_text('[mqtt]\nhost = "gw.local"\nport = 8883\n[site]\nid = "ky-chau"\nname = "UBND xã Kỳ Châu"\n', encoding="utf-8")
    s = settings.load(environ={"CONGSO_CONFIG": str(path), "CONGSO_MQTT_PORT": "1884", "CONGSO_RATING_DESK_ID": "mot-cua-2"})
    assert s.mqtt.host == "gw.local"  # from the file
    assert s.mqtt.port == 1884  # the environment wins, converted to int
    assert s.rating.desk_id == "mot-cua-2"  # a key with an underscore
    assert s.site.name == "UBND xã Kỳ Châu"
    # --config wins over CONGSO_CONFIG
    other = tmp_path / "other.toml"
    other.write_text('[node]\nid = "door-9"\n')
    assert settings.load(other, environ={"CONGSO_CONFIG": str(path)}).node.id == "door-9"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[mqtt]\nhots = 'x'\n", "unknown setting [mqtt] hots"),
        ("[mqqt]\nhost = 'x'\n", "unknown settings section [mqqt]"),
        ("[mqtt]\nport = 'abc'\n", "[mqtt] port must be a whole number"),
        ("[mqtt\n", "not valid TOML"),
    ],
)
def test_settings_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(settings.SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        settings.load(path, environ={})


def test_settings_typo_in_environment_is_reported():
    s = settings.load(environ={"CONGSO_MQTT_HOTS": "x", "CONGSO_MQTT_HOST": "gw"})
    assert s.mqtt.host == "gw" and s.ignored_env == ["CONGSO_MQTT_HOTS"]


def test_reconnect_backoff_grows_with_jitter_and_is_capped():
    delays = [[link.backoff_delay(attempt, 1.0, 30.0) for _ in range(200)] for attempt in range(8)]
    assert all(0.5 <= d <= 1.0 for d in delays[0])
    assert all(4.0 <= d <= 8.0 for d in delays[3])
    assert all(15.0 <= d <= 30.0 for d in delays[7])
    assert len({round(d, 6) for d in delays[3]}) > 100  # jitter: nodes do not reconnect in step


def test_settings_bad_environment_value_and_missing_file(tmp_path):
    with pytest.raises(settings.SettingsError, match="must be a number"):
        settings.load(environ={"CONGSO_OUTBOX_REPLAY_AFTER_S": "soon"})
    with pytest.raises(settings.SettingsError, match="does not exist"):
        settings.load(tmp_path / "missing.toml", environ={})


# -- topics -----------------------------------------------------------------------
def test_topic_builders_follow_the_contract():
    assert topics.attendance("ky-chau", "door-1") == "congso/ky-chau/node/door-1/attendance"
    assert topics.ack("ky-chau", "door-1") == "congso/ky-chau/ack/door-1"
    assert topics.cmd("ky-chau", "tv-1") == "congso/ky-chau/cmd/tv-1"
    assert topics.state("ky-chau", "roster") == "congso/ky-chau/state/roster"
    assert topics.desk("ky-chau", "mot-cua-1") == "congso/ky-chau/state/desk/mot-cua-1"
    assert topics.parse("congso/ky-chau/node/door-1/health") == topics.Topic("ky-chau", "node", "door-1", "health")
    assert topics.parse("congso/ky-chau/state/desk/mot-cua-1").kind == "desk"


@pytest.mark.parametrize("bad", ["Door-1", "-door", "door_1", "a" * 33, "", "door/1", "cửa-1"])
def test_bad_node_ids_are_refused(bad):
    with pytest.raises(ValueError, match="invalid node id"):
        topics.attendance("ky-chau", bad)


@pytest.mark.parametrize(
    "bad", ["congso/ky-chau/node/door-1", "congso/ky-chau/node/door-1/selfie", "other/ky-chau/ack/x", "congso/KY/ack/x"]
)
def test_unknown_topics_do_not_parse(bad):
    with pytest.raises(ValueError):
        topics.parse(bad)


# -- messages -----------------------------------------------------------------------
def test_events_validate_and_round_trip():
    for kind, event in (("attendance", attendance_event()), ("rating", rating_event())):
        assert messages.decode(kind, messages.encode(kind, event)) == event


def test_unknown_fields_are_ignored_and_nullable_fields_may_be_missing():
    event = attendance_event(firmware="r503", extra={"x": 1})
    del event["match_score"]
    clean = messages.decode("attendance", json.dumps(event))
    assert "firmware" not in clean and clean["match_score"] is None


@pytest.mark.parametrize(
    "change, field, reason",
    [
        ({"seq": True}, "seq", "must be an integer, got boolean"),
        ({"seq": "7"}, "seq", "must be an integer, got string"),
        ({"clock_synced": 1}, "clock_synced", "must be true or false"),
        ({"method": "face"}, "method", "must be one of card, finger"),
        ({"ts": "2026-11-23 07:45"}, "ts", "RFC 3339"),
        ({"ts": "2026-11-23T07:45:00"}, "ts", "RFC 3339"),
        ({"event_id": "not-a-uuid"}, "event_id", "must be a UUID"),
        ({"event_id": "{" + str(uuid.UUID(int=5)) + "}"}, "event_id", "must be a UUID"),
        ({"event_id": uuid.UUID(int=5).hex}, "event_id", "must be a UUID"),
        ({"ts": "2026-11-23T07:45+07:00"}, "ts", "RFC 3339"),
        ({"ts": "20261123T074501+0700"}, "ts", "RFC 3339"),
        ({"node_id": "Door 1"}, "node_id", "must be a node id"),
        ({"credential": ""}, "credential", "must not be empty"),
        ({"v": 2}, "v", "must be 1"),
        ({"staff_id": 12}, "staff_id", "must be a string"),
    ],
)
def test_wrong_types_name_the_field(change, field, reason):
    with pytest.raises(messages.MessageError) as e:
        messages.decode("attendance", json.dumps(attendance_event(**change)))
    assert e.value.field == field
    assert reason in str(e.value)


def test_missing_required_field_is_named():
    event = rating_event()
    del event["level"]
    with pytest.raises(messages.MessageError, match=r"rating\.level: is required"):
        messages.decode("rating", json.dumps(event))


def test_nested_fields_are_named_with_their_path():
    roster = {"v": 1, "version": 3, "staff": [{"staff_id": "NV001", "name": "Nguyễn Văn An", "cards": [], "fingers": {"door-1": [1, "2"]}}]}
    with pytest.raises(messages.MessageError, match=r"roster\.staff\[0\]\.fingers\.door-1\[1\]: must be an integer"):
        messages.validate("roster", roster)


def test_payload_limits_and_encodings():
    big = attendance_event(credential="A" * (64 * 1024))
    with pytest.raises(messages.MessageError, match="over the limit of 65536 bytes"):
        messages.decode("attendance", json.dumps(big))
    with pytest.raises(messages.MessageError, match="not valid JSON"):
        messages.decode("attendance", b'{"v":1,')
    with pytest.raises(messages.MessageError, match="not UTF-8"):
        messages.decode("attendance", b'{"v":1,"x":"\xff"}')
    with pytest.raises(messages.MessageError, match="must be a JSON object, got list"):
        messages.decode("attendance", b"[1,2]")
    # a reply may be up to 4 MiB (screenshots)
    reply = {"v": 1, "cmd_id": "c1", "ok": True, "result": {"png_base64": "A" * (3 * 1024 * 1024)}}
    assert messages.decode("reply", messages.encode("reply", reply))["ok"] is True


def test_encode_leaves_out_optional_fields_the_sender_left_out():
    wire = json.loads(messages.encode("reply", {"v": 1, "cmd_id": "c1", "ok": False, "error": "no finger"}))
    assert wire == {"v": 1, "cmd_id": "c1", "ok": False, "error": "no finger"}
    health = {"v": 1, "node_id": "door-1", "ts": NOW, "uptime_s": 3.5, "outbox": 0, "clock_synced": True, "devices": {"reader": "ok"}}
    assert "last_frame_age_s" not in json.loads(messages.encode("health", health))


def test_utc_and_fractional_times_are_rfc3339():
    for ts in ("2026-11-23T00:45:00Z", "2026-11-23T07:45:00.123456+07:00", "2026-11-23t07:45:00-01:30"):
        assert messages.decode("attendance", json.dumps(attendance_event(ts=ts)))["ts"] == ts


def test_failed_reply_needs_an_error():
    with pytest.raises(messages.MessageError, match=r"reply\.error: is required when ok is false"):
        messages.validate("reply", {"v": 1, "cmd_id": "c1", "ok": False})


def test_text_is_normalised_to_nfc():
    decomposed = "Nguye\u0302\u0303n"  # "Nguyễn" typed with combining marks
    event = rating_event(officer_id=decomposed)
    assert messages.decode("rating", json.dumps(event))["officer_id"] == "Nguyễn"


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(sorted(messages.SCHEMAS)))
def test_any_bytes_decode_or_raise_message_error(data, kind):
    try:
        messages.decode(kind, data)
    except messages.MessageError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@hsettings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "event_id", "node_id", "ts", "seq", "level", "reasons", "devices", "staff"]), json_values), st.sampled_from(sorted(messages.SCHEMAS)))
def test_any_json_object_validates_or_raises_message_error(obj, kind):
    try:
        messages.validate(kind, obj)
    except messages.MessageError:
        pass


# -- outbox -----------------------------------------------------------------------
def card(uid="04A1B2C3D4E5F6"):
    return {"method": "card", "credential": uid, "staff_id": None, "match_score": None}


def test_outbox_commits_and_acks(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite", "door-1")
    events = [box.add("attendance", card(), NOW, True) for _ in range(5)]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert box.depth() == 5
    # What is stored is exactly the valid wire payload.
    stored = box.after(0, 10)
    assert messages.decode("attendance", stored[0].payload) == events[0]
    assert box.ack([events[0]["event_id"], events[1]["event_id"], str(uuid.uuid4())]) == 2
    assert [p.seq for p in box.after(0, 10)] == [3, 4, 5]
    box.close()


def test_outbox_seq_survives_acks_and_restarts(tmp_path):
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path, "door-1")
    ids = [box.add("attendance", card(), NOW, True)["event_id"] for _ in range(3)]
    box.ack(ids)
    box.close()
    box = Outbox(path, "door-1")
    assert box.depth() == 0
    assert box.add("attendance", card(), NOW, True)["seq"] == 4
    box.close()


def test_outbox_refuses_invalid_events_and_stores_nothing(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite", "door-1")
    with pytest.raises(messages.MessageError, match="method"):
        box.add("attendance", {**card(), "method": "face"}, NOW, True)
    assert box.depth() == 0 and box.last_seq() == 0
    box.close()


def test_outbox_full_disk_is_a_clear_error_and_keeps_what_it_had(tmp_path):
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path, "door-1")
    first = box.add("attendance", card(), NOW, True)
    # SQLite's own "database or disk is full", as on a full SD card.
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(OutboxError, match="disk is full"):
        for _ in range(200):
            box.add("attendance", {**card(), "credential": "F" * 2000}, NOW, True)
    depth_when_full = box.depth()
    box.close()
    box = Outbox(path, "door-1")
    assert box.depth() == depth_when_full >= 1
    assert box.after(0, 1)[0].event_id == first["event_id"]
    box.close()


def test_session_expiry_below_a_day_is_refused():
    s = settings.load(environ={"CONGSO_NODE_ID": "door-1", "CONGSO_MQTT_SESSION_EXPIRY_S": "3600"})
    with pytest.raises(ValueError, match="at least 86400"):
        link.MqttLink(s, "door-1", "attendance", "0.1.0")


@pytest.mark.parametrize("kind,field", [("attendance", "credential"), ("rating", "desk_id"), ("reply", "error")])
def test_a_control_character_in_any_text_field_is_rejected_naming_the_field(kind, field):
    """A NUL in a stored text once took the hall TV down for good; the wire refuses it."""
    import uuid as uuid_mod

    base = {
        "attendance": {"v": 1, "event_id": str(uuid_mod.uuid4()), "node_id": "door-1", "ts": "2026-11-23T07:45:00+07:00",
                       "clock_synced": True, "seq": 1, "method": "card", "credential": "04A1B2C3",
                       "staff_id": None, "match_score": None},
        "rating": {"v": 1, "event_id": str(uuid_mod.uuid4()), "node_id": "kiosk-1", "ts": "2026-11-23T07:45:00+07:00",
                   "clock_synced": True, "seq": 1, "desk_id": "d1", "level": "satisfied", "reasons": [],
                   "session_id": None, "officer_id": None, "dossier_code": None},
        "reply": {"v": 1, "cmd_id": "c1", "ok": False, "error": "failed"},
    }[kind]
    messages.validate(kind, base)  # the clean one passes
    with pytest.raises(messages.MessageError, match=f"{field}.*control character U\\+0000"):
        messages.validate(kind, {**base, field: "a\x00b"})
    # new lines and tabs are text, not control
    assert messages.validate(kind, {**base, field: "a\tb\nc"})[field] == "a\tb\nc"


def test_a_control_character_in_published_state_is_dropped_not_the_whole_board():
    board = {"v": 1, "version": 3, "generated_at": "2026-11-23T07:45:00+07:00", "counts": {"processing": 1},
             "dossiers": [{"code": "HS-1", "applicant": "Nguyễn T. H.", "procedure": "Khai\x00 sinh",
                           "received_at": "2026-11-23", "due_at": None, "status": "processing", "desk": "1"}]}
    assert messages.validate("dossiers", board)["dossiers"][0]["procedure"] == "Khai sinh"
