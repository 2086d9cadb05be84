"""Staff, their cards and their fingers at each door; the roster the doors use.

Tables:

- ``staff``: staff_id, name (NFC), department, position, active, added_at.
- ``staff_cards``: card UID (upper-case hex) -> staff_id.
- ``finger_slots``: (node_id, slot) -> staff_id: where each enrolled
  finger sits in each door's module (slots differ from door to door).

The roster builder turns them into ``state/roster``; the publisher
re-publishes it within a tick of any change, so every CLI command here
only writes the database. Deactivated staff leave the roster: every door
refuses them from the next publish on.

Fingers travel between doors through reply hooks: an ``enroll`` reply
records the slot and asks the source door for the template
(``export_finger``); its reply sends ``import_finger`` to every other
attendance door in the ``nodes`` registry; each of their replies records
the slot there.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import timedelta

import sqlite_utils

from ..protocol import clock, messages, topics
from ..vocab import consent as consent_texts
from ..vocab import text as vocab_text
from . import commands, imports, privacy, state

log = logging.getLogger(__name__)

STAFF_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
UID_RE = re.compile(r"^(?:[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20})$")  # 4, 7 or 10 bytes (ISO 14443 A)


class StaffError(ValueError):
    """Something a technician typed or imported that cannot be stored; says what and where."""


def nfc(text: str | None) -> str | None:
    return vocab_text.nfc(text.strip()) if text is not None else None


def normalise_uid(uid: str) -> str:
    clean = re.sub(r"[\s:-]", "", uid).upper()
    if not UID_RE.match(clean):
        raise StaffError(f"{uid!r} is not a card UID: 4, 7 or 10 bytes in hex, e.g. 04A1B2C3")
    return clean


def check_staff_id(staff_id: str) -> str:
    staff_id = (staff_id or "").strip()
    if not STAFF_ID_RE.match(staff_id):
        raise StaffError(f"staff id {staff_id!r} must be 1-32 letters, digits, '.', '_' or '-' (e.g. NV001)")
    return staff_id


# -- staff ---------------------------------------------------------------------
@dataclass
class StaffRow:
    staff_id: str
    name: str
    department: str | None = None
    position: str | None = None


def add(db: sqlite_utils.Database, staff_id: str, name: str, department: str | None = None,
        position: str | None = None, tz: str = clock.DEFAULT_ZONE) -> str:
    """Add a staff member, or bring a deactivated one back with the new details."""
    row = _checked(StaffRow(staff_id, name, department, position), "")
    existing = get(db, row.staff_id)
    if existing and existing["active"]:
        raise StaffError(f"{row.staff_id} already exists ({existing['name']}); deactivate it first to replace it")
    with db.conn:
        _upsert(db, row, tz)
    return row.staff_id


def check_schedule(schedule: str | None, groups) -> str | None:
    """``schedule`` if it names one of ``groups`` (None or "": the office's own hours), else a StaffError."""
    schedule = (schedule or "").strip() or None
    if schedule is not None and schedule not in set(groups):
        known = ", ".join(sorted(groups)) or "none: add one to [workrules] groups first"
        raise StaffError(f"no schedule group {schedule!r} in [workrules] groups (known: {known})")
    return schedule


def set_schedule(db: sqlite_utils.Database, staff_id: str, schedule: str | None, groups) -> None:
    """Put ``staff_id`` on the schedule group ``schedule`` (one of ``groups``, the [workrules] groups' names),
    or back on the office's own hours (None or "")."""
    if get(db, staff_id) is None:
        raise StaffError(f"no staff member {staff_id!r} (congso staff list)")
    schedule = check_schedule(schedule, groups)
    with db.conn:
        db.conn.execute("UPDATE staff SET schedule = ? WHERE staff_id = ?", (schedule, staff_id))


def _checked(row: StaffRow, where: str) -> StaffRow:
    try:
        staff_id = check_staff_id(row.staff_id)
    except StaffError as e:
        raise StaffError(f"{where}{e}") from None
    try:
        name = vocab_text.clean(row.name, "name", max_len=200)
        if not name:
            raise StaffError(f"{where}{staff_id} has no name")
        return StaffRow(staff_id, name, vocab_text.clean(row.department, "department", max_len=200),
                        vocab_text.clean(row.position, "position", max_len=200))
    except vocab_text.TextError as e:
        raise StaffError(f"{where}{staff_id}: {e}") from None


def _upsert(db: sqlite_utils.Database, row: StaffRow, tz: str) -> None:
    db.conn.execute(
        "INSERT INTO staff(staff_id, name, department, position, active, added_at) VALUES (?,?,?,?,1,?) "
        "ON CONFLICT(staff_id) DO UPDATE SET name=excluded.name, department=excluded.department, "
        "position=excluded.position, active=1",
        (row.staff_id, row.name, row.department, row.position, clock.now_iso(tz)),
    )


def get(db: sqlite_utils.Database, staff_id: str) -> dict | None:
    rows = list(db.query("SELECT * FROM staff WHERE staff_id = ?", [staff_id]))
    return rows[0] if rows else None


def list_staff(db: sqlite_utils.Database, include_inactive: bool = False) -> list[dict]:
    where = "" if include_inactive else "WHERE s.active = 1"
    return list(db.query(
        "SELECT s.*, (SELECT group_concat(uid, ' ') FROM staff_cards c WHERE c.staff_id = s.staff_id) AS cards, "
        "(SELECT group_concat(node_id || ':' || slot, ' ') FROM finger_slots f WHERE f.staff_id = s.staff_id) AS fingers "
        f"FROM staff s {where} ORDER BY s.staff_id"
    ))


def search(db: sqlite_utils.Database, query: str | None = None, include_inactive: bool = False,
           page: int = 1, page_size: int = 50) -> tuple[list[dict], int]:
    """One page of staff whose id, name or department contains ``query`` (any case); (rows, total).

    Each row has ``cards`` (list of UIDs) and ``fingers`` (door -> slots),
    like ``list_staff`` but paged, for the console.
    """
    where, params = [], []
    if not include_inactive:
        where.append("s.active = 1")
    q = _fold(nfc(query) or "")
    if q:
        # Compared without case or diacritics: "dia chinh" and "địa chính" find "Địa chính".
        db.conn.create_function("congso_fold", 1, lambda t: _fold(t) if t else "", deterministic=True)
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(congso_fold(s.staff_id) LIKE ? ESCAPE '\\' OR congso_fold(s.name) LIKE ? ESCAPE '\\' "
                     "OR congso_fold(s.department) LIKE ? ESCAPE '\\')")
        params += [like, like, like]
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    total = db.execute(f"SELECT count(*) FROM staff s {clause}", params).fetchone()[0]
    page = max(1, int(page))
    rows = list(db.query(
        f"SELECT s.* FROM staff s {clause} ORDER BY s.active DESC, s.staff_id LIMIT ? OFFSET ?",
        [*params, int(page_size), (page - 1) * int(page_size)],
    ))
    ids = [r["staff_id"] for r in rows]
    cards: dict[str, list[str]] = {i: [] for i in ids}
    fingers: dict[str, dict[str, list[int]]] = {i: {} for i in ids}
    if ids:
        marks = ",".join("?" * len(ids))
        for uid, sid in db.execute(f"SELECT uid, staff_id FROM staff_cards WHERE staff_id IN ({marks}) ORDER BY uid", ids):
            cards[sid].append(uid)
        for node, slot, sid in db.execute(
                f"SELECT node_id, slot, staff_id FROM finger_slots WHERE staff_id IN ({marks}) ORDER BY node_id, slot", ids):
            fingers[sid].setdefault(node, []).append(slot)
    for r in rows:
        r["cards"], r["fingers"] = cards[r["staff_id"]], fingers[r["staff_id"]]
    return rows, total


def update(db: sqlite_utils.Database, staff_id: str, name: str, department: str | None = None,
           position: str | None = None) -> str:
    """Change the name, department and position of ``staff_id`` (active or not); the roster follows."""
    existing = get(db, staff_id)
    if existing is None:
        raise StaffError(f"no staff member {staff_id!r} (congso staff list)")
    row = _checked(StaffRow(staff_id, name, department, position), "")
    with db.conn:
        db.conn.execute("UPDATE staff SET name = ?, department = ?, position = ? WHERE staff_id = ?",
                        (row.name, row.department, row.position, row.staff_id))
    return row.staff_id


def deactivate(db: sqlite_utils.Database, staff_id: str, tz: str = clock.DEFAULT_ZONE) -> list[tuple[str, int]]:
    """The person left: out of the roster (every door refuses them), kept in past reports.

    Their fingers are removed from every door's module too (fingerprints are
    biometric data, kept no longer than needed): a ``finger_deletions`` row
    and a ``delete_finger`` command for each (door, slot) they hold; each
    door's answer confirms it and frees the slot (``_deleted``), and the
    gateway asks again until it does (``privacy.retry_deletions``). The
    gateway's sealed copies of their template go at once. Returns the
    (door, slot) pairs asked.
    """
    existing = get(db, staff_id)
    if existing is None:
        raise StaffError(f"no staff member {staff_id!r} (congso staff list)")
    if not existing["active"]:
        raise StaffError(f"{staff_id} is already deactivated")
    with db.conn:
        db.conn.execute("UPDATE staff SET active = 0 WHERE staff_id = ?", (staff_id,))
    return privacy.request_deletions(db, staff_id, tz)


def delete_finger(db: sqlite_utils.Database, node_id: str, slot: int, tz: str = clock.DEFAULT_ZONE) -> str:
    """Ask ``node_id`` to remove the finger in ``slot``; its reply frees the slot here. Returns the cmd_id."""
    if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
        raise StaffError(f"slot must be a whole number from 0, got {slot!r}")
    row = db.execute("SELECT staff_id FROM finger_slots WHERE node_id = ? AND slot = ?", (node_id, slot)).fetchone()
    if row is None:
        raise StaffError(f"no finger is recorded at {node_id} in slot {slot}")
    with db.conn:
        deletion_id = db.conn.execute(
            "INSERT INTO finger_deletions(staff_id, node_id, slot, requested_at) VALUES (?,?,?,?)",
            (row[0], node_id, slot, clock.now_iso(tz))).lastrowid
    return privacy.ask_deletion(db, deletion_id, row[0], node_id, slot, tz)


# -- consent to keep a fingerprint -----------------------------------------------------
def record_consent(db: sqlite_utils.Database, staff_id: str, recorded_by: str, note: str | None = None,
                   tz: str = clock.DEFAULT_ZONE, text_id: str = consent_texts.CURRENT) -> None:
    """Record that ``staff_id`` signed consent text ``text_id`` to have a fingerprint kept (before any enrolment)."""
    person = get(db, staff_id)
    if person is None:
        raise StaffError(f"no staff member {staff_id!r} (congso staff list)")
    if not person["active"]:
        raise StaffError(f"{staff_id} is deactivated: add them again first (congso staff add)")
    if text_id not in consent_texts.CONSENT_TEXTS:
        raise StaffError(f"no consent text {text_id!r} (known: {', '.join(consent_texts.CONSENT_TEXTS)})")
    try:
        recorded_by = vocab_text.clean(recorded_by, "recorded_by", max_len=200)
        note = vocab_text.clean(note, "note", max_len=500)
    except vocab_text.TextError as e:
        raise StaffError(str(e)) from None
    if not recorded_by:
        raise StaffError("who recorded the consent is required")
    with db.conn:
        db.conn.execute(
            "INSERT INTO finger_consents(staff_id, given_at, recorded_by, note, text_id) VALUES (?,?,?,?,?) "
            "ON CONFLICT(staff_id) DO UPDATE SET given_at=excluded.given_at, recorded_by=excluded.recorded_by, "
            "note=excluded.note, text_id=excluded.text_id",
            (staff_id, clock.now_iso(tz), recorded_by, note or None, text_id),
        )


def consent(db: sqlite_utils.Database, staff_id: str) -> dict | None:
    """The recorded consent of ``staff_id``: given_at, recorded_by, note, text_id (None: none recorded)."""
    rows = list(db.query("SELECT * FROM finger_consents WHERE staff_id = ?", [staff_id]))
    return rows[0] if rows else None


def has_consent(db: sqlite_utils.Database, staff_id: str) -> bool:
    return consent(db, staff_id) is not None


def withdraw_consent(db: sqlite_utils.Database, staff_id: str, tz: str = clock.DEFAULT_ZONE) -> list[tuple[str, int]]:
    """``staff_id`` withdraws their consent: their fingers are deleted everywhere, as on deactivation.

    They stay active (their cards still open the doors); a new enrolment
    needs a new consent. Returns the (door, slot) pairs asked.
    """
    if get(db, staff_id) is None:
        raise StaffError(f"no staff member {staff_id!r} (congso staff list)")
    with db.conn:
        db.conn.execute("DELETE FROM finger_consents WHERE staff_id = ?", (staff_id,))
    return privacy.request_deletions(db, staff_id, tz)


# CSV headers accepted for each column, compared without case, accents or spaces.
HEADERS = {
    "staff_id": ["staff_id", "id", "ma nv", "ma nhan vien", "ma can bo", "ma cb", "ma"],
    "name": ["name", "full_name", "ho va ten", "ho ten", "ten"],
    "department": ["department", "phong ban", "don vi", "bo phan"],
    "position": ["position", "chuc vu", "chuc danh"],
}


def _fold(text: str) -> str:
    """'Mã NV' -> 'ma nv': header matching that does not care about diacritics."""
    decomposed = unicodedata.normalize("NFD", text.strip().lower()).replace("đ", "d")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\s_/]+", " ", plain).strip()


def parse_csv(data: bytes, name: str = "the file") -> list[StaffRow]:
    """Staff rows from a CSV or XLSX file; every bad line is reported (with its number), none is kept.

    Read by ``imports``: UTF-8 with or without a BOM, Windows-1258, comma or
    semicolon, or XLSX; columns staff_id,name,department,position or their
    Vietnamese headers (Mã NV, Họ và tên, Phòng ban, Chức vụ).
    """
    try:
        table = imports.read_bytes(data, name)
    except imports.ImportFileError as e:
        raise StaffError(str(e)) from None
    records = [(n, cells) for n, cells in table.rows]
    if not any(any(c.strip() for c in cells) for _, cells in records):
        raise StaffError("the file is empty")
    while records and not any(c.strip() for c in records[0][1]):
        records.pop(0)
    header_line, header = records[0]
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        folded = _fold(title)
        for key, names in HEADERS.items():
            if folded in {_fold(n) for n in names} and key not in columns:
                columns[key] = index
    missing = [k for k in ("staff_id", "name") if k not in columns]
    if missing:
        raise StaffError(
            f"line {header_line}: no column for {' and '.join(missing)}; the header was {header!r} "
            "(expected staff_id,name,department,position or Mã NV,Họ và tên,Phòng ban,Chức vụ)"
        )
    rows, errors, seen = [], [], {}
    for line_no, record in records[1:]:
        if not any(cell.strip() for cell in record):
            continue
        cell = lambda key: record[columns[key]] if key in columns and columns[key] < len(record) else None  # noqa: E731
        try:
            row = _checked(StaffRow(cell("staff_id") or "", cell("name") or "", cell("department"), cell("position")),
                           f"line {line_no}: ")
        except StaffError as e:
            errors.append(str(e))
            continue
        if row.staff_id in seen:
            errors.append(f"line {line_no}: {row.staff_id} again (first on line {seen[row.staff_id]})")
            continue
        seen[row.staff_id] = line_no
        rows.append(row)
    if errors:
        raise StaffError(f"{len(errors)} bad line(s), nothing imported:\n" + "\n".join(errors))
    if not rows:
        raise StaffError("no staff in the file (only a header)")
    return rows


def import_csv(db: sqlite_utils.Database, data: bytes, tz: str = clock.DEFAULT_ZONE,
               name: str = "the file") -> tuple[int, int]:
    """Add or update every row of a CSV or XLSX file, all in one transaction; returns (added, updated)."""
    rows = parse_csv(data, name)
    known = {r[0] for r in db.execute("SELECT staff_id FROM staff")}
    with db.conn:
        for row in rows:
            _upsert(db, row, tz)
    updated = sum(1 for r in rows if r.staff_id in known)
    return len(rows) - updated, updated


# -- cards ----------------------------------------------------------------------
def assign_card(db: sqlite_utils.Database, staff_id: str, uid: str, tz: str = clock.DEFAULT_ZONE) -> str:
    uid = normalise_uid(uid)
    person = get(db, staff_id)
    if person is None:
        raise StaffError(f"no staff member {staff_id!r} (congso staff list)")
    if not person["active"]:
        raise StaffError(f"{staff_id} is deactivated: add them again first (congso staff add)")
    owner = db.execute("SELECT staff_id FROM staff_cards WHERE uid = ?", (uid,)).fetchone()
    if owner and owner[0] != staff_id:
        raise StaffError(f"card {uid} belongs to {owner[0]}; remove it there first (congso card remove {uid})")
    with db.conn:
        db.conn.execute("INSERT OR REPLACE INTO staff_cards(uid, staff_id, assigned_at) VALUES (?,?,?)",
                        (uid, staff_id, clock.now_iso(tz)))
    return uid


def remove_card(db: sqlite_utils.Database, uid: str) -> str:
    uid = normalise_uid(uid)
    with db.conn:
        if db.conn.execute("DELETE FROM staff_cards WHERE uid = ?", (uid,)).rowcount == 0:
            raise StaffError(f"card {uid} is not assigned to anybody")
    return uid


def unknown_cards(db: sqlite_utils.Database, since_date: str | None = None) -> list[dict]:
    """Recent taps of cards nobody had (staff_id null), not assigned since: one row per UID."""
    # One pass over the days asked for (the local_date index): with a single max()
    # aggregate, SQLite takes the bare node_id from the row of the latest tap. (A
    # sub-query per card was a full scan of a year of events for each one.)
    return [{"uid": r[0], "taps": r[1], "last_ts": r[2], "last_node": r[3]} for r in db.execute(
        "SELECT credential, count(*), max(ts), node_id "
        "FROM attendance_events e WHERE local_date >= ? AND method = 'card' AND staff_id IS NULL "
        "AND credential NOT IN (SELECT uid FROM staff_cards) GROUP BY credential ORDER BY 3 DESC",
        [since_date or "0000-00-00"],
    )]


def unknown_cards_recent(db: sqlite_utils.Database, today, days: int) -> list[dict]:
    """``unknown_cards`` of the last ``days`` days up to ``today`` (an office date)."""
    if not isinstance(days, int) or days < 1:
        raise StaffError(f"days must be a whole number from 1, got {days!r}")
    return unknown_cards(db, (today - timedelta(days=days)).isoformat())


# -- fingers ------------------------------------------------------------------------
def record_finger(db: sqlite_utils.Database, node_id: str, slot: int, staff_id: str, source_node: str,
                  tz: str = clock.DEFAULT_ZONE) -> None:
    with db.conn:
        db.conn.execute(
            "INSERT OR REPLACE INTO finger_slots(node_id, slot, staff_id, enrolled_at, source_node) VALUES (?,?,?,?,?)",
            (node_id, int(slot), staff_id, clock.now_iso(tz), source_node),
        )


def attendance_doors(db: sqlite_utils.Database) -> list[str]:
    return [r[0] for r in db.execute("SELECT node_id FROM nodes WHERE kind = 'attendance' ORDER BY node_id")]


def _result(reply: dict) -> dict:
    """The reply's result as a dict (ingest hands it over as the JSON text it stores)."""
    result = reply.get("result")
    if isinstance(result, str):
        result = json.loads(result)
    return result or {}


def _enrolled(db, command, reply) -> None:
    if not reply["ok"]:
        return
    result = _result(reply)
    node, slot = command["node_id"], result.get("slot")
    staff_id = command["args"].get("staff_id")
    if not isinstance(slot, int) or not staff_id:
        log.error("enroll reply from %s without a slot: %r", node, result)
        return
    record_finger(db, node, slot, staff_id, node)
    others = [n for n in attendance_doors(db) if n != node]
    log.info("%s enrolled at %s in slot %d; carrying it to %s", staff_id, node, slot, ", ".join(others) or "no other door")
    if others:
        commands.queue(db, node, "export_finger", {"slot": slot},
                       {"staff_id": staff_id, "source_node": node, "carry_to": others})


def _wanted(db, staff_id: str | None, command: dict) -> bool:
    """Is a finger of ``staff_id`` carried by ``command`` still to be kept?

    Not when they are deactivated, nor when their fingers were asked to be
    deleted (consent withdrawn) after this command was queued.
    """
    person = get(db, staff_id) if staff_id else None
    if person is not None and not person["active"]:
        return False
    return db.execute(
        "SELECT 1 FROM finger_deletions d, outgoing_commands c WHERE d.staff_id = ? AND c.cmd_id = ? "
        "AND julianday(d.requested_at) >= julianday(c.queued_at) LIMIT 1", (staff_id, command["cmd_id"])).fetchone() is None


def _exported(db, command, reply) -> None:
    context = command["context"]
    if not reply["ok"]:
        log.error("could not take the finger of %s from %s: %s", context.get("staff_id"), command["node_id"], reply["error"])
        return
    result = _result(reply)
    # Sealed by ingest before it was stored; a hand-built reply (tests) may hold it plain.
    sealed = result.get("template_sealed") or (privacy.seal(db, result["template_base64"])
                                               if isinstance(result.get("template_base64"), str) else None)
    if not context.get("staff_id") or not sealed:
        return  # an export asked by hand (a technician), not a carry
    if not _wanted(db, context["staff_id"], command):
        # Deactivated (or consent withdrawn) while the carry was on its way: carried nowhere, copy forgotten.
        log.info("not carrying the finger of %s: deactivated or consent withdrawn meanwhile", context["staff_id"])
        privacy.forget_templates(db, context["staff_id"])
        return
    for node in context.get("carry_to", []):
        commands.queue(db, node, "import_finger", {"template_sealed": sealed},
                       {"staff_id": context["staff_id"], "source_node": command["node_id"]})
    # The carries hold their own sealed copies: the reply's is not needed any more.
    with db.conn:
        db.conn.execute("UPDATE command_replies SET result = NULL WHERE cmd_id = ?", (command["cmd_id"],))


def _imported(db, command, reply) -> None:
    context = command["context"]
    if not reply["ok"]:
        log.error("%s could not store the finger of %s: %s", command["node_id"], context.get("staff_id"), reply["error"])
        return
    slot = _result(reply).get("slot")
    if context.get("staff_id") and isinstance(slot, int):
        record_finger(db, command["node_id"], slot, context["staff_id"], context.get("source_node") or "")
        if not _wanted(db, context["staff_id"], command):
            # A carry still in flight when they left: it lands, and goes again at once.
            log.info("%s stored a finger of %s, who is deactivated or withdrew consent: deleting it",
                     command["node_id"], context["staff_id"])
            privacy.request_deletions(db, context["staff_id"], only=(command["node_id"], slot))


def _deleted(db, command, reply) -> None:
    slot = command["args"].get("slot")
    if reply["ok"] or privacy.slot_is_gone(reply.get("error")):
        privacy.confirm(db, command["node_id"], slot)
    else:
        log.warning("%s could not delete the finger in slot %s: %s (asked again later)",
                    command["node_id"], slot, reply.get("error"))


# -- the roster ---------------------------------------------------------------------
#
# ``state/roster`` is readable by every node, the TVs and kiosks in the public
# hall too, so it carries no credential: ``staff`` is empty, ``per_door`` true,
# ``staff_count`` and ``doors`` say what the doors hold. Each door gets its own
# retained ``state/roster/<node>/<part>`` (only that door may read it, by the
# broker's ACL): the staff who have a card, or a finger at that door, with
# their cards and that door's slots. Staff are spread over ``parts`` parts by
# a hash of their id, so one card assigned re-publishes one part, and enough
# parts keep each under the 64 KiB limit at any staff size. ``parts`` never
# shrinks for a door: a part once published is always re-published, so no
# stale part of an older split is ever left retained.

ROSTER_PART_BUDGET = 56 * 1024  # bytes of staff entries per part, under 64 KiB with the envelope
MAX_ROSTER_PARTS = 256


def roster(db: sqlite_utils.Database) -> dict:
    """Every active staff member with their cards and slots per door (the gateway's view; never published whole)."""
    staff = {r[0]: {"staff_id": r[0], "name": r[1], "department": r[2], "cards": [], "fingers": {}}
             for r in db.execute("SELECT staff_id, name, department FROM staff WHERE active = 1 ORDER BY staff_id")}
    for uid, staff_id in db.execute("SELECT uid, staff_id FROM staff_cards ORDER BY uid"):
        if staff_id in staff:
            staff[staff_id]["cards"].append(uid)
    # A finger being deleted (consent withdrawn) is no longer matched to anybody.
    for node, slot, staff_id in db.execute(
            "SELECT node_id, slot, staff_id FROM finger_slots f WHERE NOT EXISTS (SELECT 1 FROM finger_deletions d "
            "WHERE d.node_id = f.node_id AND d.slot = f.slot AND d.confirmed_at IS NULL) ORDER BY node_id, slot"):
        if staff_id in staff:
            staff[staff_id]["fingers"].setdefault(node, []).append(slot)
    for entry in staff.values():
        if entry["department"] is None:
            del entry["department"]  # optional fields are left out on the wire
    return {"staff": list(staff.values())}


def roster_doors(db: sqlite_utils.Database) -> list[str]:
    """Doors that get a roster: attendance nodes in the registry, and any node holding a finger."""
    doors = set(attendance_doors(db))
    doors |= {r[0] for r in db.execute("SELECT DISTINCT node_id FROM finger_slots")}
    return sorted(n for n in doors if topics.NODE_ID_RE.match(n))


def door_entries(full: dict, node: str) -> list[dict]:
    """What ``node`` needs: whoever has a card (cards open every door) or a finger in its module."""
    out = []
    for person in full["staff"]:
        slots = person["fingers"].get(node, [])
        if not person["cards"] and not slots:
            continue
        entry = {"staff_id": person["staff_id"], "name": person["name"]}
        if "department" in person:
            entry["department"] = person["department"]
        entry["cards"] = person["cards"]
        entry["fingers"] = slots
        out.append(entry)
    return out


def _bucket(staff_id: str, parts: int) -> int:
    return zlib.crc32(staff_id.encode("utf-8")) % parts


def split_parts(entries: list[dict], at_least: int = 1, budget: int = ROSTER_PART_BUDGET) -> list[list[dict]]:
    """``entries`` in the fewest parts (at least ``at_least``) whose every part fits ``budget`` bytes."""
    sizes = {e["staff_id"]: len(messages.dumps(e)) + 1 for e in entries}
    parts = max(1, at_least, -(-sum(sizes.values()) // budget))
    while True:
        buckets: list[list[dict]] = [[] for _ in range(parts)]
        used = [0] * parts
        for e in entries:
            k = _bucket(e["staff_id"], parts)
            buckets[k].append(e)
            used[k] += sizes[e["staff_id"]]
        if max(used) <= budget or parts >= MAX_ROSTER_PARTS:
            if max(used) > budget:
                raise StaffError(f"the roster does not fit {MAX_ROSTER_PARTS} parts of {budget} bytes")
            return buckets
        parts += 1


def _published_parts(db: sqlite_utils.Database) -> dict[str, int]:
    """node -> how many roster parts were ever published for it (the publisher's own record)."""
    found: dict[str, int] = {}
    for (name,) in db.execute("SELECT name FROM published_state WHERE name LIKE 'roster/%'"):
        m = topics.DOOR_ROSTER_NAME_RE.match(name)
        if m:
            found[m.group(1)] = max(found.get(m.group(1), 0), int(m.group(2)) + 1)
    return found


# The publisher rebuilds on every commit (each check-in of a morning rush),
# and building 2,000 staff for 4 doors costs ~0.1 s here (more on a Pi): it
# is built again only when what it is made of changed.
_FINGERPRINT_SQL = (
    "SELECT (SELECT group_concat(staff_id || '|' || name || '|' || ifnull(department, '') || '|' || active, char(10))"
    " FROM staff), (SELECT group_concat(uid || '|' || staff_id, char(10)) FROM staff_cards),"
    " (SELECT group_concat(node_id || '|' || slot || '|' || staff_id, char(10)) FROM finger_slots),"
    " (SELECT group_concat(id, char(10)) FROM finger_deletions WHERE confirmed_at IS NULL),"
    " (SELECT group_concat(node_id, char(10)) FROM nodes WHERE kind = 'attendance'),"
    " (SELECT group_concat(name, char(10)) FROM published_state WHERE name LIKE 'roster/%')"
)
_last_built: dict = {}


def build_roster(db: sqlite_utils.Database, ctx) -> dict:
    fingerprint = (id(db), db.execute(_FINGERPRINT_SQL).fetchone())
    if _last_built.get("fingerprint") == fingerprint:
        return _last_built["states"]
    states = _build_roster(db)
    _last_built.update(fingerprint=fingerprint, states=states)
    return states


def _build_roster(db: sqlite_utils.Database) -> dict:
    full = roster(db)
    doors = roster_doors(db)
    earlier = _published_parts(db)
    out: dict[str, dict | None] = {
        "roster": {"staff": [], "per_door": True, "staff_count": len(full["staff"]), "doors": doors},
    }
    for node in doors:
        buckets = split_parts(door_entries(full, node), at_least=earlier.get(node, 1))
        for k, bucket in enumerate(buckets):
            out[topics.door_roster_name(node, k)] = {
                "node_id": node, "part": k, "parts": len(buckets), "staff_count": len(full["staff"]),
                "staff": bucket,
            }
    for node, count in earlier.items():
        if node not in doors:  # a door taken out of service: its credentials leave the broker
            for k in range(count):
                out[topics.door_roster_name(node, k)] = None
    return out


# The doors' rosters; the replies that record fingers and carry them to the other doors.
DOMAIN = state.Domain("staff", builders=(build_roster,), reply_hooks={
    "enroll": _enrolled, "export_finger": _exported, "import_finger": _imported, "delete_finger": _deleted})
