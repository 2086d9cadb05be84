"""Staff data as Law 91/2025/QH15 asks, on a real gateway database: consent (which text), fingers deleted
at every door until each confirms, templates sealed at rest, a person's data exported, old events pruned.

The replies come through the gateway's own ingest and reply hooks (what a door's MQTT reply becomes),
and commands go out through ``commands.send_queued`` (what the door receives).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from conftest import run_congso
from congso.gateway import commands, domains, enrolment, privacy, staff, state
from congso.gateway.db import open_db
from congso.gateway.ingest import Ingest
from congso.protocol import messages, topics
from congso.protocol import settings as settings_mod
from congso.protocol.link import Incoming
from congso.vocab import consent as consent_texts

SITE, TZ = "ky-chau", "Asia/Ho_Chi_Minh"
TEMPLATE = bytes(range(256)) * 2 + b"congso-template-\xf0\x9f\x94\x92-end"  # 532 bytes, one of them like no other
TEMPLATE_B64 = base64.b64encode(TEMPLATE).decode("ascii")
HOOKS = state.reply_hooks(domains.DOMAINS)


@pytest.fixture(autouse=True)
def _fresh_keys():
    privacy.forget_keys()
    yield
    privacy.forget_keys()


@pytest.fixture
def office(tmp_path):
    data = tmp_path / "data"
    db = open_db(data / "gateway.sqlite")
    with db.conn:
        for door in ("door-1", "door-2"):
            db.conn.execute("INSERT INTO nodes(node_id, kind) VALUES (?, 'attendance')", (door,))
    staff.add(db, "NV001", "Lê Thị Hoa", "Văn phòng")
    staff.add(db, "NV002", "Trần Văn Bình")
    staff.assign_card(db, "NV001", "04A1B2C3")
    return data, db


def cli(data, *args, ok=True, **env):
    r = run_congso(*args, CONGSO_DATA_DIR=str(data), **env)
    if ok:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def sent(db) -> list[dict]:
    """Send what is queued, as the gateway does; return the commands as the doors receive them."""
    out = []
    commands.send_queued(db, SITE, lambda topic, payload, expiry: out.append(json.loads(payload)), TZ)
    return out


def reply(db, cmd_id, node, ok=True, result=None, error=None):
    """A door's reply through ingest (stored, settled) and the gateway's reply hooks."""
    ingest = Ingest(db, SITE, TZ)
    payload = messages.encode("reply", {"v": 1, "cmd_id": cmd_id, "ok": ok, "result": result, "error": error})
    batch = ingest.process([Incoming(topics.reply(SITE, node), payload, time.monotonic())])
    assert batch.replies, "the reply was not taken"
    commands.run_reply_hooks(db, batch.replies, HOOKS)


def enrol_and_carry(db, staff_id="NV001"):
    """NV001 enrolled at door-1 (slot 3), exported, carried to door-2 (slot 5): the whole hook chain."""
    staff.record_consent(db, staff_id, "Trần Văn Bình")
    cmd_id = enrolment.start(db, "door-1", staff_id, require_consent=True)
    [cmd] = sent(db)
    reply(db, cmd_id, "door-1", result={"slot": 3})
    [export] = sent(db)
    assert export["cmd"] == "export_finger" and export["args"] == {"slot": 3}
    reply(db, export["cmd_id"], "door-1", result={"slot": 3, "template_base64": TEMPLATE_B64})
    [carry] = sent(db)
    assert carry["cmd"] == "import_finger"
    return carry


def fingers(db, staff_id="NV001"):
    return db.execute("SELECT node_id, slot FROM finger_slots WHERE staff_id = ? ORDER BY node_id", (staff_id,)).fetchall()


def queued(db, cmd="delete_finger"):
    return [(n, json.loads(a)) for n, a in db.execute(
        "SELECT node_id, args FROM outgoing_commands WHERE cmd = ? AND sent_at IS NULL AND settled_at IS NULL "
        "ORDER BY node_id", (cmd,))]


# -- consent ----------------------------------------------------------------------------------
def test_consent_records_which_text_was_signed_and_enrolment_needs_it(office):
    data, db = office
    assert consent_texts.CURRENT in consent_texts.CONSENT_TEXTS
    text = consent_texts.text()
    for needed in ("chấm công", "mẫu vân tay", "máy chấm công", "nghỉ việc", "rút lại", "91/2025/QH15"):
        assert needed in text, needed

    with pytest.raises(enrolment.EnrolmentError, match="no recorded consent of NV001"):
        enrolment.start(db, "door-1", "NV001", require_consent=True)
    assert queued(db, "enroll") == []
    with pytest.raises(staff.StaffError, match="no consent text"):
        staff.record_consent(db, "NV001", "Trần Văn Bình", text_id="1999-01")
    with pytest.raises(staff.StaffError, match="who recorded"):
        staff.record_consent(db, "NV001", "  ")
    staff.record_consent(db, "NV001", "Trần Văn Bình", "Bản giấy trong hồ sơ")
    got = staff.consent(db, "NV001")
    assert (got["text_id"], got["recorded_by"], got["note"]) == (consent_texts.CURRENT, "Trần Văn Bình", "Bản giấy trong hồ sơ")
    enrolment.start(db, "door-1", "NV001", require_consent=True)
    assert queued(db, "enroll") == [("door-1", {"staff_id": "NV001"})]


def test_the_cli_prints_the_text_records_consent_and_enroll_refuses_without_it(office):
    data, db = office
    r = cli(data, "enroll", "--node", "door-1", "--staff", "NV002", "--timeout", "0.5", ok=False)
    assert r.returncode == 1 and "no recorded consent of NV002" in r.stderr
    assert queued(db, "enroll") == []  # nothing asked of the door

    r = cli(data, "staff", "consent", "NV002", ok=False)
    assert r.returncode == 2 and "--recorded-by" in r.stderr and not staff.has_consent(db, "NV002")
    r = cli(data, "staff", "consent", "NV002", "--recorded-by", "Nguyễn Văn Cường", "--note", "Hồ sơ 12")
    assert consent_texts.text() in r.stdout and "recorded the consent of NV002" in r.stdout
    assert staff.consent(db, "NV002")["text_id"] == consent_texts.CURRENT
    row = db.execute("SELECT action, target, detail FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    assert row[:2] == ("staff.consent", "NV002") and consent_texts.CURRENT in row[2]

    cli(data, "enroll", "--node", "door-1", "--staff", "NV002", "--timeout", "0.3", ok=False)  # no gateway runs
    assert db.execute("SELECT count(*) FROM outgoing_commands WHERE cmd = 'enroll'").fetchone()[0] == 1


def test_withdrawn_consent_deletes_the_fingers_everywhere_but_the_card_still_works(office):
    data, db = office
    enrol_and_carry(db)
    [carry] = [c for c in db.execute("SELECT cmd_id FROM outgoing_commands WHERE cmd='import_finger'")]
    reply(db, carry[0], "door-2", result={"slot": 5})
    assert fingers(db) == [("door-1", 3), ("door-2", 5)]

    r = cli(data, "staff", "consent", "NV001", "--withdraw")
    assert "withdrew consent" in r.stdout and "door-1 (slot 3), door-2 (slot 5)" in r.stdout
    assert staff.get(db, "NV001")["active"] == 1 and not staff.has_consent(db, "NV001")
    assert queued(db) == [("door-1", {"slot": 3}), ("door-2", {"slot": 5})]
    # From now on no door matches their finger to them; their card still opens every door.
    person = next(p for p in staff.roster(db)["staff"] if p["staff_id"] == "NV001")
    assert person["cards"] == ["04A1B2C3"] and person["fingers"] == {}
    assert db.execute("SELECT action FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()[0] == "staff.consent_withdraw"
    # A new enrolment needs a new consent.
    with pytest.raises(enrolment.EnrolmentError, match="no recorded consent"):
        enrolment.start(db, "door-1", "NV001", require_consent=True)


# -- deactivation: deleted at every door, asked again until each confirms ---------------------
def test_deactivation_records_a_deletion_per_door_and_each_reply_confirms_it(office):
    data, db = office
    carry = enrol_and_carry(db)
    reply(db, carry["cmd_id"], "door-2", result={"slot": 5})
    assert staff.deactivate(db, "NV001", TZ) == [("door-1", 3), ("door-2", 5)]
    assert "NV001" not in {p["staff_id"] for p in staff.roster(db)["staff"]}  # the card stops at once
    assert [(r["node_id"], r["slot"], r["attempts"], r["last_outcome"]) for r in privacy.pending_deletions(db)] == [
        ("door-1", 3, 1, "queued"), ("door-2", 5, 1, "queued")]
    out = {c["args"]["slot"]: c for c in sent(db)}
    assert set(out) == {3, 5} and all(c["cmd"] == "delete_finger" for c in out.values())
    assert {r["last_outcome"] for r in privacy.pending_deletions(db)} == {"sent, no answer yet"}

    reply(db, out[3]["cmd_id"], "door-1", result={"slot": 3})
    assert fingers(db) == [("door-2", 5)]
    # door-2's slot was empty already (someone cleared the module): the template is gone all the same.
    reply(db, out[5]["cmd_id"], "door-2", ok=False, error="slot 5 is empty")
    assert fingers(db) == [] and privacy.pending_deletions(db) == []
    assert db.execute("SELECT count(*) FROM finger_deletions WHERE confirmed_at IS NOT NULL").fetchone()[0] == 2


def test_unconfirmed_deletions_are_asked_again_and_at_once_when_the_door_is_back(office):
    data, db = office
    staff.record_finger(db, "door-1", 3, "NV001", "door-1")
    staff.record_finger(db, "door-2", 5, "NV001", "door-1")
    staff.deactivate(db, "NV001", TZ)
    out = {c["args"]["slot"]: c for c in sent(db)}
    assert privacy.retry_deletions(db, TZ) == 0  # sent, waiting for the answers: nothing asked twice

    reply(db, out[3]["cmd_id"], "door-1", ok=False, error="the sensor did not answer")  # refused
    [row] = [r for r in privacy.pending_deletions(db) if r["node_id"] == "door-1"]
    assert row["last_outcome"] == "refused: the sensor did not answer"
    assert privacy.retry_deletions(db, TZ) == 0  # not at once: 15 s after, then 30 s, 60 s ... at most an hour
    later = datetime.now(ZoneInfo(TZ)) + timedelta(seconds=privacy.RETRY_EVERY_S + 1)
    assert privacy.retry_deletions(db, TZ, now=later) == 1
    assert queued(db) == [("door-1", {"slot": 3})]
    assert privacy.retry_deletions(db, TZ) == 0  # queued, not yet sent: not twice

    # door-2 is off: its command was sent into the void. When it comes back it is asked at once.
    assert privacy.retry_deletions(db, TZ, back_online={"door-2"}) == 1
    assert [n for n, _ in queued(db)] == ["door-1", "door-2"]
    # A command that expired unsent (the gateway was down) is asked again too.
    with db.conn:
        db.conn.execute("UPDATE outgoing_commands SET settled_at = '2026-01-01T00:00:00+07:00', outcome = 'expired' "
                        "WHERE sent_at IS NULL AND settled_at IS NULL")
    assert privacy.retry_deletions(db, TZ) == 2
    pending = {r["node_id"]: r["attempts"] for r in privacy.pending_deletions(db)}
    assert pending == {"door-1": 3, "door-2": 3}
    for c in sent(db):
        reply(db, c["cmd_id"], c["args"]["slot"] == 3 and "door-1" or "door-2", result={"slot": c["args"]["slot"]})
    assert privacy.pending_deletions(db) == [] and fingers(db) == []


def test_failed_asks_back_off_up_to_an_hour():
    assert [privacy.backoff_s(n) for n in (1, 2, 3, 4)] == [15, 30, 60, 120]
    assert privacy.backoff_s(50) == privacy.MAX_BACKOFF_S == 3600


def test_a_door_coming_online_is_seen_in_the_gateways_batch(office):
    payload = messages.encode("status", {"v": 1, "node_id": "door-2", "kind": "attendance", "state": "online",
                                         "version": "0.2", "since": "2026-12-01T08:00:00+07:00"})
    gone = messages.encode("status", {"v": 1, "node_id": "door-1", "kind": "attendance", "state": "offline",
                                      "version": "0.2", "since": "2026-12-01T08:00:00+07:00"})
    items = [Incoming(topics.status(SITE, "door-2"), payload, 0.0), Incoming(topics.status(SITE, "door-1"), gone, 0.0),
             Incoming(topics.status("other-site", "door-3"), payload, 0.0)]
    assert privacy.doors_online(items, SITE) == {"door-2"}


def test_the_cli_says_which_doors_were_asked_and_which_are_pending(office):
    data, db = office
    staff.record_finger(db, "door-1", 3, "NV001", "door-1")
    staff.record_finger(db, "door-2", 5, "NV001", "door-1")
    r = cli(data, "staff", "deactivate", "NV001")
    assert "asked 2 door(s) to delete the fingerprint of NV001: door-1 (slot 3), door-2 (slot 5)" in r.stdout
    r = cli(data, "staff", "deletions", "--json")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["staff_id"], x["node_id"], x["slot"], x["attempts"], x["last_outcome"]) for x in rows] == [
        ("NV001", "door-1", 3, 1, "queued"), ("NV001", "door-2", 5, 1, "queued")]
    assert "door-2" in cli(data, "staff", "deletions", "NV001").stdout
    for c in sent(db):
        reply(db, c["cmd_id"], "door-1" if c["args"]["slot"] == 3 else "door-2", result={"slot": c["args"]["slot"]})
    assert "no deletion pending" in cli(data, "staff", "deletions", "NV001").stdout
    audit = db.execute("SELECT target, detail FROM audit_log WHERE action = 'staff.deactivate'").fetchone()
    assert audit[0] == "NV001" and "door-1:3" in audit[1]


def test_a_carry_in_flight_for_someone_deactivated_is_not_imported(office):
    data, db = office
    staff.record_consent(db, "NV001", "Trần Văn Bình")
    cmd_id = enrolment.start(db, "door-1", "NV001", require_consent=True)
    sent(db)
    reply(db, cmd_id, "door-1", result={"slot": 3})
    [export] = sent(db)
    staff.deactivate(db, "NV001", TZ)  # while the export is on its way
    reply(db, export["cmd_id"], "door-1", result={"slot": 3, "template_base64": TEMPLATE_B64})
    assert [c["cmd"] for c in sent(db)] == ["delete_finger"]  # no import_finger anywhere
    assert db.execute("SELECT result FROM command_replies WHERE cmd_id = ?", (export["cmd_id"],)).fetchone() == (None,)

    # An import already sent when they left: stored there, then deleted at once.
    carry = enrol_and_carry(db, "NV002")
    staff.deactivate(db, "NV002", TZ)
    assert db.execute("SELECT args FROM outgoing_commands WHERE cmd_id = ?", (carry["cmd_id"],)).fetchone() == ("{}",)
    sent(db)
    reply(db, carry["cmd_id"], "door-2", result={"slot": 7})
    assert queued(db) == [("door-2", {"slot": 7})]
    assert ("door-2", 7) in [(r["node_id"], r["slot"]) for r in privacy.pending_deletions(db, "NV002")]


def test_a_carry_not_sent_yet_when_they_leave_is_never_sent(office):
    data, db = office
    staff.record_consent(db, "NV001", "Trần Văn Bình")
    cmd_id = enrolment.start(db, "door-1", "NV001", require_consent=True)
    sent(db)
    reply(db, cmd_id, "door-1", result={"slot": 3})
    [export] = sent(db)
    reply(db, export["cmd_id"], "door-1", result={"slot": 3, "template_base64": TEMPLATE_B64})
    staff.deactivate(db, "NV001", TZ)  # the import to door-2 is queued, not sent
    assert [c["cmd"] for c in sent(db)] == ["delete_finger"]


# -- templates sealed at rest -----------------------------------------------------------------------
def _file_bytes(data) -> bytes:
    """Every byte of a copy of the database (its WAL too), as somebody who took the files would have it."""
    out = b""
    for name in ("gateway.sqlite", "gateway.sqlite-wal"):
        if (data / name).exists():
            out += (data / name).read_bytes()
    return out


def test_a_copied_database_holds_no_template_and_the_door_still_gets_the_exact_one(office, tmp_path):
    data, db = office
    carry = enrol_and_carry(db)
    assert carry["args"] == {"template_base64": TEMPLATE_B64}  # exactly what door-1 sent, opened only now
    stored = db.execute("SELECT result FROM command_replies r JOIN outgoing_commands c USING (cmd_id) "
                        "WHERE c.cmd = 'export_finger'").fetchone()[0]
    args = json.loads(db.execute("SELECT args FROM outgoing_commands WHERE cmd = 'import_finger'").fetchone()[0])
    assert stored is None  # the reply's copy went once the carries had theirs
    assert list(args) == ["template_sealed"] and args["template_sealed"].startswith("v1:")

    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    raw = _file_bytes(copy)
    assert raw and TEMPLATE not in raw and TEMPLATE_B64.encode() not in raw
    assert TEMPLATE[100:140] not in raw and TEMPLATE_B64[100:140].encode() not in raw

    # The key: outside the database, 0600, made on first use.
    key = data.parent / "template.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().strip() not in raw

    # Deleting the person deletes their sealed template too.
    staff.deactivate(db, "NV001", TZ)
    assert db.execute("SELECT count(*) FROM outgoing_commands WHERE args LIKE '%template_sealed%'").fetchone()[0] == 0


def test_a_reply_stored_sealed_holds_no_template_in_the_database(office):
    data, db = office
    cmd_id = commands.queue(db, "door-1", "export_finger", {"slot": 1})  # asked by hand: no carry
    sent(db)
    reply(db, cmd_id, "door-1", result={"slot": 1, "template_base64": TEMPLATE_B64})
    result = json.loads(db.execute("SELECT result FROM command_replies WHERE cmd_id = ?", (cmd_id,)).fetchone()[0])
    assert set(result) == {"slot", "template_sealed"}
    assert privacy.unseal(db, result["template_sealed"]) == TEMPLATE_B64
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert TEMPLATE_B64.encode() not in _file_bytes(data)


def test_a_key_open_to_others_is_refused_and_another_key_does_not_open_a_template(office, tmp_path):
    data, db = office
    sealed = privacy.seal(db, TEMPLATE_B64)
    key = data.parent / "template.key"
    os.chmod(key, 0o640)
    privacy.forget_keys()
    with pytest.raises(privacy.PrivacyError, match="chmod 600"):
        privacy.seal(db, TEMPLATE_B64)
    os.chmod(key, 0o600)
    assert privacy.unseal(db, sealed) == TEMPLATE_B64

    other = settings_mod.load(environ={"CONGSO_DATA_DIR": str(tmp_path / "x" / "data"),
                                       "CONGSO_PRIVACY_TEMPLATE_KEY": str(tmp_path / "other.key")})
    assert privacy.configure(other) == tmp_path / "other.key"
    with pytest.raises(privacy.PrivacyError, match="does not open"):
        privacy.unseal(db, sealed)
    # A command that cannot be opened is never sent (and says why in the log), not sent sealed.
    commands.queue(db, "door-2", "import_finger", {"template_sealed": sealed})
    assert sent(db) == []


def test_the_gateway_refuses_to_start_with_a_key_open_to_others(tmp_path):
    key = tmp_path / "k.key"
    privacy.create_key(key)
    os.chmod(key, 0o644)
    r = run_congso("gateway", "run", CONGSO_DATA_DIR=str(tmp_path / "data"), CONGSO_PRIVACY_TEMPLATE_KEY=str(key),
                   CONGSO_MQTT_PORT="1", timeout=30)
    assert r.returncode != 0 and "open to group or others" in r.stderr and "chmod 600" in r.stderr


def test_the_key_defaults_beside_the_config_file(tmp_path):
    cfg = tmp_path / "etc" / "congso.toml"
    cfg.parent.mkdir()
    cfg.write_text('[site]\nid = "ky-chau"\n', encoding="utf-8")
    s = settings_mod.load(cfg, environ={})
    assert privacy.key_path(s) == (tmp_path / "etc" / "template.key").resolve()
    s = settings_mod.load(environ={"CONGSO_DATA_DIR": str(tmp_path / "var" / "data")})
    assert privacy.key_path(s) == (tmp_path / "var" / "template.key").resolve()


# -- subject access ---------------------------------------------------------------------------------
def _event(db, event_id, staff_id, credential, method, day, node="door-1"):
    with db.conn:
        db.conn.execute(
            "INSERT INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload, "
            "method, credential, staff_id) VALUES (?,?,?,?,?,1,?, '{}', ?,?,?)",
            (event_id, node, abs(hash(event_id)) % 10**6, f"{day}T07:30:00+07:00", day, f"{day}T07:30:01+07:00",
             method, credential, staff_id))


def test_export_person_gives_everything_held_about_them_and_never_a_template(office, tmp_path):
    data, db = office
    carry = enrol_and_carry(db)
    reply(db, carry["cmd_id"], "door-2", result={"slot": 5})
    _event(db, "e1", "NV001", "04A1B2C3", "card", "2026-11-02")
    _event(db, "e2", None, "04A1B2C3", "card", "2026-11-03")  # their card, before it was assigned
    _event(db, "e3", "NV002", "0", "finger", "2026-11-03")
    with db.conn:
        db.conn.execute("INSERT INTO manual_punches(staff_id, ts, local_date, reason, entered_by, entered_at) "
                        "VALUES ('NV001', '2026-11-04T17:05:00+07:00', '2026-11-04', 'Quên chấm công', 'clerk', '2026-11-05')")
        db.conn.execute('INSERT INTO "leave"(staff_id, kind, first_day, last_day, entered_by, entered_at) '
                        "VALUES ('NV001', 'P', '2026-11-10', '2026-11-11', 'clerk', '2026-11-01')")

    from congso.gateway import audit
    audit.record_cli(db, "staff.card_assign", "DEADBEEF", {"staff_id": "NV001"})
    audit.record_cli(db, "staff.card_assign", "CAFEBABE", {"staff_id": "NV0011"})  # somebody else
    r = cli(data, "staff", "export-data", "NV001", "-o", str(tmp_path / "nv001.json"))
    raw = (tmp_path / "nv001.json").read_bytes()
    got = json.loads(raw.decode("utf-8"))
    assert "Lê Thị Hoa".encode("utf-8") in raw  # UTF-8, not \\u escapes
    assert got["staff"]["name"] == "Lê Thị Hoa" and [c["uid"] for c in got["cards"]] == ["04A1B2C3"]
    assert [(f["node_id"], f["slot"]) for f in got["fingers"]] == [("door-1", 3), ("door-2", 5)]
    assert all(set(f) == {"node_id", "slot", "enrolled_at", "source_node"} for f in got["fingers"])
    assert got["consent"]["text_id"] == consent_texts.CURRENT and got["consent"]["text"] == consent_texts.text()
    assert [e["event_id"] for e in got["attendance_events"]] == ["e1", "e2"]
    assert [c["reason"] for c in got["corrections"]] == ["Quên chấm công"]
    assert [(x["kind"], x["first_day"]) for x in got["leave"]] == [("P", "2026-11-10")]
    assert got["pending_deletions"] == []
    assert [a["target"] for a in got["audit"] if a["action"] == "staff.card_assign"] == ["DEADBEEF"]
    assert got["desk_sessions"] == [] and got["ratings_of_their_service"] == [] and got["console_accounts"] == []
    assert TEMPLATE_B64.encode() not in raw and b"template" not in raw
    audit = db.execute("SELECT target FROM audit_log WHERE action = 'staff.export_data'").fetchall()
    assert audit == [("NV001",)]

    staff.deactivate(db, "NV001", TZ)
    again = privacy.export_person(db, "NV001")
    assert {(d["node_id"], d["slot"]) for d in again["pending_deletions"]} == {("door-1", 3), ("door-2", 5)}
    assert any(a["action"] == "staff.export_data" for a in again["audit"])
    r = cli(data, "staff", "export-data", "NV404", ok=False)
    assert r.returncode == 1 and "no staff member 'NV404'" in r.stderr


# -- retention ------------------------------------------------------------------------------------------
def test_old_attendance_events_are_pruned_in_batches_and_zero_keeps_all(office):
    data, db = office
    today = date(2026, 12, 1)
    for i in range(25):
        _event(db, f"old{i}", "NV001", "04A1B2C3", "card", (today - timedelta(days=400 + i)).isoformat())
    _event(db, "edge", "NV001", "04A1B2C3", "card", (today - timedelta(days=365)).isoformat())
    _event(db, "new", "NV001", "04A1B2C3", "card", today.isoformat())
    assert privacy.prune_events(db, 0, today) == 0
    assert privacy.prune_events(db, 365, today, dry_run=True) == 25
    assert db.execute("SELECT count(*) FROM attendance_events").fetchone()[0] == 27
    assert privacy.prune_events(db, 365, today, batch=10) == 25
    assert sorted(r[0] for r in db.execute("SELECT event_id FROM attendance_events")) == ["edge", "new"]
    with pytest.raises(privacy.PrivacyError):
        privacy.prune_events(db, -1, today)


def test_the_cli_prunes_with_a_dry_run_first_and_audits_what_it_removed(office):
    data, db = office
    for i in range(3):
        _event(db, f"old{i}", "NV001", "04A1B2C3", "card", f"2020-01-0{i + 1}")
    _event(db, "new", "NV001", "04A1B2C3", "card", date.today().isoformat())
    env = {"CONGSO_PRIVACY_ATTENDANCE_RETENTION_DAYS": "365"}
    r = cli(data, "gateway", "prune", "--dry-run", **env)
    assert "would remove 3 attendance events" in r.stdout
    assert db.execute("SELECT count(*) FROM attendance_events").fetchone()[0] == 4
    r = cli(data, "gateway", "prune", **env)
    assert "removed 3 attendance events" in r.stdout
    assert db.execute("SELECT count(*) FROM attendance_events").fetchone()[0] == 1
    row = db.execute("SELECT detail FROM audit_log WHERE action = 'privacy.prune_events'").fetchone()
    assert json.loads(row[0]) == {"removed": 3, "retention_days": 365}
    assert "kept" in cli(data, "gateway", "prune", CONGSO_PRIVACY_ATTENDANCE_RETENTION_DAYS="0").stdout


def test_the_gateways_rounds_retry_and_prune_once_a_day(office):
    data, db = office
    settings = settings_mod.load(environ={"CONGSO_DATA_DIR": str(data), "CONGSO_PRIVACY_ATTENDANCE_RETENTION_DAYS": "30"})
    _event(db, "old", "NV001", "04A1B2C3", "card", "2020-01-01")
    staff.record_finger(db, "door-1", 3, "NV001", "door-1")
    staff.deactivate(db, "NV001", TZ)
    with db.conn:
        db.conn.execute("UPDATE outgoing_commands SET settled_at = '2026-01-01T00:00:00+07:00', outcome = 'expired'")
    clock = [1000.0]
    rounds = privacy.Rounds(db, settings, monotonic=lambda: clock[0])
    rounds.tick()
    assert db.execute("SELECT count(*) FROM attendance_events").fetchone()[0] == 0
    assert db.execute("SELECT actor, via FROM audit_log WHERE action = 'privacy.prune_events'").fetchone() == ("gateway", "gateway")
    assert queued(db) == [("door-1", {"slot": 3})]
    _event(db, "old2", "NV001", "04A1B2C3", "card", "2020-01-02")
    clock[0] += privacy.RETRY_EVERY_S
    rounds.tick()
    assert db.execute("SELECT count(*) FROM attendance_events").fetchone()[0] == 1  # not before a day has passed
    clock[0] += privacy.PRUNE_EVERY_S
    rounds.tick()
    assert db.execute("SELECT count(*) FROM attendance_events").fetchone()[0] == 0


def test_install_gateway_makes_the_key_0600_once_and_the_unit_hands_it_to_the_gateway(tmp_path):
    source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = tmp_path / "root"

    def install():
        r = run_congso("install", "gateway", "--root", str(root), "--source", source, "--no-packages", "--no-check",
                       "--no-venv", "--gateway-host", "gw.ky-chau.lan", timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    first = install()
    key = root / "etc/congso/template.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and "template.key" in first
    made = key.read_bytes()
    assert len(base64.b64decode(made.strip())) == 32
    install()
    assert key.read_bytes() == made  # kept: a new key would lose every sealed template
    unit = (root / "etc/systemd/system/congso-gateway.service").read_text()
    assert "LoadCredential=template.key:/etc/congso/template.key" in unit.splitlines()
    # The gateway under systemd finds it in $CREDENTIALS_DIRECTORY, before the one beside the config.
    creds = tmp_path / "creds"
    creds.mkdir()
    shutil.copy(key, creds / "template.key")
    cfg = settings_mod.load(root / "etc/congso/congso.toml", environ={})
    os.environ["CREDENTIALS_DIRECTORY"] = str(creds)
    try:
        assert privacy.key_path(cfg) == creds / "template.key"
    finally:
        del os.environ["CREDENTIALS_DIRECTORY"]
    assert privacy.key_path(cfg) == key.resolve()


def test_a_template_typed_into_node_cmd_is_sealed_with_the_gateways_key(office, tmp_path):
    data, db = office
    key = tmp_path / "etc-key" / "template.key"
    r = cli(data, "node", "cmd", "door-2", "import_finger", "--args", json.dumps({"template_base64": TEMPLATE_B64}),
            "--timeout", "0.3", ok=False, CONGSO_PRIVACY_TEMPLATE_KEY=str(key))
    assert r.returncode != 0  # no gateway runs: not delivered
    args = json.loads(db.execute("SELECT args FROM outgoing_commands WHERE cmd = 'import_finger'").fetchone()[0])
    assert list(args) == ["template_sealed"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # the configured key, made by the CLI on first use
    privacy.configure(settings_mod.load(environ={"CONGSO_DATA_DIR": str(data),
                                                 "CONGSO_PRIVACY_TEMPLATE_KEY": str(key)}))
    assert privacy.unseal(db, args["template_sealed"]) == TEMPLATE_B64
    assert TEMPLATE_B64.encode() not in _file_bytes(data)


def test_one_finger_deleted_by_hand_is_tracked_like_the_others(office):
    data, db = office
    staff.record_finger(db, "door-1", 3, "NV001", "door-1")
    with pytest.raises(staff.StaffError, match="no finger is recorded at door-1 in slot 9"):
        staff.delete_finger(db, "door-1", 9)
    cmd_id = staff.delete_finger(db, "door-1", 3, TZ)
    [row] = privacy.pending_deletions(db)
    assert (row["staff_id"], row["node_id"], row["slot"], row["attempts"]) == ("NV001", "door-1", 3, 1)
    sent(db)
    reply(db, cmd_id, "door-1", result={"slot": 3})
    assert privacy.pending_deletions(db) == [] and fingers(db) == []
    assert staff.get(db, "NV001")["active"] == 1
