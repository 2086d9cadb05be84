"""Staff data as Law 91/2025/QH15 asks: deleting fingers everywhere, sealed templates, export, retention.

- **Deletions.** Deactivating a person (or their withdrawn consent) records a
  ``finger_deletions`` row per (door, slot) they hold and queues
  ``delete_finger`` there. The door's answer confirms it (``confirm``);
  until then ``retry_deletions`` queues it again whenever the last command
  settled without success (expired, no reply, refused) and at once when the
  door comes back online. ``pending_deletions`` says what is still open.
- **Sealed templates.** A fingerprint template reaches the gateway database
  in two places: the ``export_finger`` reply (``command_replies.result``) and
  the ``import_finger`` commands that carry it to the other doors
  (``outgoing_commands.args``). Both hold ``{"template_sealed": "v1:..."}``
  (AES-GCM, a 256-bit key in a file outside the database, 0600) instead of
  ``template_base64``; a command is unsealed only when it is published.
- **Subject access.** ``export_person``: everything held about one person.
- **Retention.** ``prune_events``: attendance events older than
  ``[privacy] attendance_retention_days``, in small batches.

``Rounds`` is the gateway's periodic work for all of it (on the publisher's tick).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import stat
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterable

import sqlite_utils
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..protocol import clock, topics

log = logging.getLogger(__name__)

KEY_FILE = "template.key"
SEALED_PREFIX = "v1:"
_AAD = b"congso fingerprint template v1"
NONCE_BYTES = 12

# A deletion whose command settled without success is asked again this often (the gateway's round).
RETRY_EVERY_S = 15.0
# ... and no sooner than this after its last failure, doubling with each attempt up to MAX_BACKOFF_S (a door
# without a sensor refuses at once: not four commands a minute for ever). A door back online is asked at once.
MAX_BACKOFF_S = 3600.0
PRUNE_BATCH = 2000  # events deleted per transaction: no long write lock on a Pi's SD card
PRUNE_EVERY_S = 86400.0
# Errors from a door that mean the slot is empty already: the template is gone, which is what was asked.
_GONE_WORDS = ("no such slot", "empty", "no template", "not enrolled", "nothing in slot")


class PrivacyError(ValueError):
    """A key file that cannot be used, a sealed template that does not open, or a bad argument."""


# -- the template key --------------------------------------------------------------------
_lock = threading.Lock()
_configured: Path | None = None
_keys: dict[str, bytes] = {}


def key_path(settings) -> Path:
    """Where the template key lives: ``[privacy] template_key``, or template.key beside the config file.

    Under systemd the gateway reads it as a credential (``LoadCredential=``,
    ``$CREDENTIALS_DIRECTORY/template.key``), so the file in /etc/congso stays 0600 root.
    With no config file: ``template.key`` in the data directory's parent.
    """
    configured = (settings.privacy.template_key or "").strip()
    if configured:
        return Path(configured).expanduser()
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / KEY_FILE).is_file():
        return Path(credentials) / KEY_FILE
    if settings.source:
        return Path(settings.source).resolve().parent / KEY_FILE
    return Path(settings.data_dir).resolve().parent / KEY_FILE


def configure(settings) -> Path:
    """Use the key of ``settings`` in this process (the gateway, at start); loads or creates it now."""
    global _configured
    path = key_path(settings)
    load_key(path)
    _configured = path
    return path


def use_settings(settings) -> None:
    """Seal and open with the key of ``settings`` from now on in this process (the CLI); nothing is read yet."""
    global _configured
    _configured = key_path(settings)


def _db_file(db: sqlite_utils.Database) -> Path | None:
    for _, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return Path(file)
    return None


def _key_for(db: sqlite_utils.Database) -> bytes:
    if _configured is not None:
        return load_key(_configured)
    file = _db_file(db)
    if file is None:  # an in-memory database (a test): a key for this process only
        with _lock:
            return _keys.setdefault(":memory:", AESGCM.generate_key(bit_length=256))
    # Not configured (a library call outside the gateway): the default with no config
    # file, the data directory's parent (the database is <data_dir>/gateway.sqlite).
    return load_key(file.resolve().parent.parent / KEY_FILE)


def create_key(path: Path) -> bool:
    """Create a fresh 256-bit key file at ``path`` (0600) unless one is there; True if made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as e:
        raise PrivacyError(
            f"cannot create the template key {path}: {e.strerror} (on an installed gateway "
            "`sudo congso install gateway` makes it; or set [privacy] template_key)") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii") + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o600)  # whatever the umask said
    log.info("created the template key %s (0600); keep it with the backups, apart from the database", path)
    return True


def load_key(path: Path, create: bool = True) -> bytes:
    """The key in ``path`` (created 0600 on first use); PrivacyError if group or others may read it."""
    path = Path(path)
    with _lock:
        if str(path) in _keys:
            return _keys[str(path)]
        if create and not path.exists():
            create_key(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise PrivacyError(f"no template key at {path} ([privacy] template_key)") from None
        except OSError as e:
            raise PrivacyError(f"cannot read the template key {path}: {e.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PrivacyError(
                f"the template key {path} is open to group or others (mode {stat.S_IMODE(st.st_mode):04o}): "
                f"it must be readable by its owner only: chmod 600 {path}")
        try:
            key = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
        except PermissionError:
            raise PrivacyError(f"cannot read the template key {path}: permission denied "
                               "(the gateway's unit hands it over with LoadCredential=)") from None
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise PrivacyError(f"the template key {path} is not a base64 key (it was damaged?)") from None
        if len(key) != 32:
            raise PrivacyError(f"the template key {path} holds {len(key)} bytes, not 32 (AES-256)")
        _keys[str(path)] = key
        return key


def forget_keys() -> None:
    """Drop the cached keys and the configured path (tests, and a gateway started again in one process)."""
    global _configured
    with _lock:
        _keys.clear()
        _configured = None


# -- sealing -----------------------------------------------------------------------------
def seal(db: sqlite_utils.Database, template_base64: str) -> str:
    """``template_base64`` (as the door sent it) sealed: ``v1:<base64 of nonce + ciphertext>``."""
    nonce = os.urandom(NONCE_BYTES)
    box = AESGCM(_key_for(db)).encrypt(nonce, template_base64.encode("utf-8"), _AAD)
    return SEALED_PREFIX + base64.b64encode(nonce + box).decode("ascii")


def unseal(db: sqlite_utils.Database, sealed: str) -> str:
    """The exact ``template_base64`` that was sealed; PrivacyError if it does not open with this key."""
    if not isinstance(sealed, str) or not sealed.startswith(SEALED_PREFIX):
        raise PrivacyError("not a sealed template (v1:...)")
    try:
        raw = base64.b64decode(sealed[len(SEALED_PREFIX):], validate=True)
        return AESGCM(_key_for(db)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _AAD).decode("utf-8")
    except (binascii.Error, ValueError, InvalidTag):
        raise PrivacyError("a sealed template does not open with this template key "
                           "(another gateway's key? [privacy] template_key)") from None


def seal_fields(db: sqlite_utils.Database, obj):
    """``obj`` with a ``template_base64`` string replaced by ``template_sealed`` (anything else as it is)."""
    if isinstance(obj, dict) and isinstance(obj.get("template_base64"), str):
        out = {k: v for k, v in obj.items() if k != "template_base64"}
        out["template_sealed"] = seal(db, obj["template_base64"])
        return out
    return obj


def sealed_reply_result(db: sqlite_utils.Database, result):
    """A reply's result as ingest stores it: any template sealed; if it cannot be sealed, left out (never stored plain)."""
    try:
        return seal_fields(db, result)
    except (PrivacyError, OSError) as e:
        log.error("a template in a reply was dropped, not stored: %s", e)
        return {k: v for k, v in result.items() if k != "template_base64"} if isinstance(result, dict) else result


def redacted(obj):
    """``obj`` for a log or an audit row: a template is named, never written."""
    if isinstance(obj, dict) and ("template_base64" in obj or "template_sealed" in obj):
        return {**{k: v for k, v in obj.items() if k not in ("template_base64", "template_sealed")},
                "template": "(a fingerprint template: not logged)"}
    return obj


def unseal_fields(db: sqlite_utils.Database, obj):
    """The reverse of ``seal_fields``: what the door must receive."""
    if isinstance(obj, dict) and isinstance(obj.get("template_sealed"), str):
        out = {k: v for k, v in obj.items() if k != "template_sealed"}
        out["template_base64"] = unseal(db, obj["template_sealed"])
        return out
    return obj


def forget_templates(db: sqlite_utils.Database, staff_id: str, tz: str = clock.DEFAULT_ZONE) -> int:
    """Delete every sealed template of ``staff_id`` the gateway holds; unsent carries never go. Returns rows touched.

    The export replies lose their result, and ``import_finger`` commands their
    arguments; one not sent yet is settled as expired (never sent).
    """
    now = clock.now_iso(tz)
    mine = "json_extract(context, '$.staff_id') = ?"
    with db.conn:
        c = db.conn
        replies = c.execute(
            "UPDATE command_replies SET result = NULL WHERE result IS NOT NULL AND cmd_id IN "
            f"(SELECT cmd_id FROM outgoing_commands WHERE cmd = 'export_finger' AND {mine})", (staff_id,)).rowcount
        c.execute(
            "UPDATE outgoing_commands SET settled_at = ?, outcome = 'expired' WHERE cmd = 'import_finger' "
            f"AND sent_at IS NULL AND settled_at IS NULL AND {mine}", (now, staff_id))
        carries = c.execute(
            f"UPDATE outgoing_commands SET args = '{{}}' WHERE cmd = 'import_finger' AND args <> '{{}}' AND {mine}",
            (staff_id,)).rowcount
    return replies + carries


# -- deletions at the doors --------------------------------------------------------------
def request_deletions(db: sqlite_utils.Database, staff_id: str, tz: str = clock.DEFAULT_ZONE,
                      only: tuple[str, int] | None = None) -> list[tuple[str, int]]:
    """Ask every door holding a finger of ``staff_id`` to delete it; record each ask. Returns (door, slot) pairs.

    ``only``: just that (door, slot). A (door, slot) already pending for them
    is asked again, not recorded twice.
    The gateway's own sealed copies go at once (``forget_templates``).
    """
    forget_templates(db, staff_id, tz)
    slots = [(r[0], r[1]) for r in db.execute(
        "SELECT node_id, slot FROM finger_slots WHERE staff_id = ? ORDER BY node_id, slot", (staff_id,))]
    if only is not None:
        slots = [s for s in slots if s == (only[0], int(only[1]))]
    asked = []
    for node, slot in slots:
        if not topics.NODE_ID_RE.match(node):
            # Not a door id anybody can send to (a 0.1.0 import): nothing to ask, nothing kept.
            with db.conn:
                db.conn.execute("DELETE FROM finger_slots WHERE node_id = ? AND slot = ?", (node, slot))
            continue
        with db.conn:
            row = db.conn.execute(
                "SELECT id FROM finger_deletions WHERE staff_id = ? AND node_id = ? AND slot = ? AND confirmed_at IS NULL",
                (staff_id, node, slot)).fetchone()
            if row is None:
                deletion_id = db.conn.execute(
                    "INSERT INTO finger_deletions(staff_id, node_id, slot, requested_at) VALUES (?,?,?,?)",
                    (staff_id, node, slot, clock.now_iso(tz))).lastrowid
            else:
                deletion_id = row[0]
        ask_deletion(db, deletion_id, staff_id, node, slot, tz)
        asked.append((node, slot))
    return asked


def ask_deletion(db: sqlite_utils.Database, deletion_id: int, staff_id: str, node: str, slot: int, tz: str) -> str:
    """Queue ``delete_finger`` for the deletion ``deletion_id``; count the attempt. Returns the cmd_id."""
    from . import commands

    cmd_id = commands.queue(db, node, "delete_finger", {"slot": slot},
                            {"staff_id": staff_id, "deletion_id": deletion_id}, tz)
    with db.conn:
        db.conn.execute("UPDATE finger_deletions SET cmd_id = ?, attempts = attempts + 1 WHERE id = ?",
                        (cmd_id, deletion_id))
    return cmd_id


def slot_is_gone(error: str | None) -> bool:
    """A door's refusal that means the slot holds nothing: the template is gone all the same."""
    text = (error or "").lower()
    return any(word in text for word in _GONE_WORDS)


def confirm(db: sqlite_utils.Database, node_id: str, slot, tz: str = clock.DEFAULT_ZONE) -> int:
    """The door says the template in ``slot`` is gone: close its deletions and free the slot. Returns deletions closed."""
    with db.conn:
        closed = db.conn.execute(
            "UPDATE finger_deletions SET confirmed_at = ? WHERE node_id = ? AND slot = ? AND confirmed_at IS NULL",
            (clock.now_iso(tz), node_id, slot)).rowcount
        db.conn.execute("DELETE FROM finger_slots WHERE node_id = ? AND slot = ?", (node_id, slot))
    if closed:
        log.info("%s confirmed the deletion of the finger in slot %s", node_id, slot)
    return closed


_OPEN_SQL = (
    "SELECT d.id, d.staff_id, d.node_id, d.slot, d.requested_at, d.attempts, d.cmd_id, "
    "c.cmd_id, c.sent_at, c.settled_at, c.outcome, r.ok, r.error "
    "FROM finger_deletions d LEFT JOIN outgoing_commands c ON c.cmd_id = d.cmd_id "
    "LEFT JOIN command_replies r ON r.cmd_id = d.cmd_id WHERE d.confirmed_at IS NULL"
)


def _last_outcome(cmd_id, known, sent_at, settled_at, outcome, error) -> str:
    """Where the last ask of a deletion is: queued, sent (no answer yet), answered, refused: ..., expired, no reply."""
    if cmd_id is None:
        return "not asked"
    if known is None:
        return "no reply"  # the command was pruned long ago
    if settled_at is None:
        return "sent, no answer yet" if sent_at else "queued"
    if outcome == "refused":
        return f"refused: {error}" if error else "refused"
    return outcome or "settled"


def pending_deletions(db: sqlite_utils.Database, staff_id: str | None = None) -> list[dict]:
    """Deletions no door has confirmed yet: staff_id, node_id, slot, requested_at, attempts, last_outcome."""
    sql, args = _OPEN_SQL, []
    if staff_id is not None:
        sql += " AND d.staff_id = ?"
        args.append(staff_id)
    return [{"staff_id": sid, "node_id": node, "slot": slot, "requested_at": requested_at, "attempts": attempts,
             "last_outcome": _last_outcome(cmd_id, known, sent_at, settled_at, outcome, error)}
            for (_id, sid, node, slot, requested_at, attempts, cmd_id, known, sent_at, settled_at, outcome, _ok, error)
            in db.execute(sql + " ORDER BY d.staff_id, d.node_id, d.slot", args).fetchall()]


def backoff_s(attempts: int) -> float:
    """How long after a failed ask the next one goes: 15 s, 30 s, 60 s, ... at most an hour."""
    return min(MAX_BACKOFF_S, RETRY_EVERY_S * 2 ** max(0, min(int(attempts) - 1, 20)))


def _age_s(now: datetime, iso: str) -> float:
    try:
        return (now - datetime.fromisoformat(iso)).total_seconds()
    except (TypeError, ValueError):
        return float("inf")  # an unreadable time: due now


def retry_deletions(db: sqlite_utils.Database, tz: str = clock.DEFAULT_ZONE,
                    back_online: Iterable[str] = (), now: datetime | None = None) -> int:
    """Ask again for every open deletion whose last command settled without success; returns how many.

    Settled without success: expired (never sent), no reply, refused (a
    refusal saying the slot is empty confirms instead), or pruned.
    ``back_online``: doors that just came back: their open deletions are
    asked again at once unless the last ask is still waiting to be sent (one
    sent while the door was away may never reach it; deleting twice is harmless).
    Otherwise a failed ask is repeated ``backoff_s(attempts)`` after it settled.
    """
    back = set(back_online)
    now = now or clock.now(tz)
    asked = 0
    for (deletion_id, staff_id, node, slot, _at, attempts, cmd_id, known, sent_at, settled_at, outcome, ok,
         error) in db.execute(_OPEN_SQL).fetchall():
        if known is not None and settled_at is not None and (ok or slot_is_gone(error)):
            confirm(db, node, slot, tz)  # answered, and its hook did not get to it
            continue
        waiting = known is not None and settled_at is None
        if node in back:
            if waiting and sent_at is None:
                continue  # about to be sent anyway
        elif waiting:
            continue
        elif settled_at is not None and _age_s(now, settled_at) < backoff_s(attempts):
            continue
        if not topics.NODE_ID_RE.match(node):
            continue
        ask_deletion(db, deletion_id, staff_id, node, slot, tz)
        asked += 1
        log.info("asking %s again to delete the finger of %s in slot %d (last: %s)", node, staff_id, slot,
                 _last_outcome(cmd_id, known, sent_at, settled_at, outcome, error))
    return asked


def doors_online(items, site: str) -> set[str]:
    """Nodes whose ``status`` in this batch says ``online`` (a door that came back)."""
    from ..protocol import messages

    found = set()
    for item in items:
        try:
            where = topics.parse(item.topic)
            if where.kind == "node" and where.site == site and where.leaf == "status":
                if messages.decode("status", item.payload).get("state") == "online":
                    found.add(where.node)
        except Exception:  # ingest says what was wrong with it
            continue
    return found


# -- subject access ---------------------------------------------------------------------------
def _rows(db, sql: str, args) -> list[dict]:
    cur = db.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _like_json_string(value: str) -> str:
    """A LIKE pattern (escape ``\\``) matching ``value`` as a JSON string anywhere in a text."""
    quoted = json.dumps(value, ensure_ascii=False)
    return "%" + quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def export_person(db: sqlite_utils.Database, staff_id: str) -> dict:
    """Everything the gateway holds about ``staff_id`` (a subject-access request), as plain JSON values.

    Finger slots say where and when, never the template; attendance events
    are theirs by staff id or by one of their cards.
    """
    from . import staff as staff_mod

    person = staff_mod.get(db, staff_id)
    if person is None:
        raise PrivacyError(f"no staff member {staff_id!r} (congso staff list --all)")
    cards = _rows(db, "SELECT uid, assigned_at FROM staff_cards WHERE staff_id = ? ORDER BY uid", (staff_id,))
    uids = [c["uid"] for c in cards]
    marks = ",".join("?" * len(uids))
    by_card = f" OR (method = 'card' AND credential IN ({marks}))" if uids else ""
    events = _rows(db, "SELECT event_id, node_id, ts, local_date, method, credential, staff_id, match_score, "
                   f"clock_synced, received_at FROM attendance_events WHERE staff_id = ?{by_card} ORDER BY ts",
                   (staff_id, *uids))
    consent = staff_mod.consent(db, staff_id)
    if consent is not None:
        from ..vocab import consent as texts
        consent = {**consent, "text": texts.CONSENT_TEXTS.get(consent.get("text_id") or "")}
    out = {
        "staff": person,
        "cards": cards,
        "fingers": _rows(db, "SELECT node_id, slot, enrolled_at, source_node FROM finger_slots WHERE staff_id = ? "
                         "ORDER BY node_id, slot", (staff_id,)),
        "consent": consent,
        "attendance_events": events,
        "corrections": _rows(db, "SELECT id, ts, local_date, reason, entered_by, entered_at FROM manual_punches "
                             "WHERE staff_id = ? ORDER BY ts", (staff_id,)),
        "leave": _rows(db, 'SELECT id, kind, first_day, last_day, half, note, status, entered_by, entered_at, '
                       'decided_by, decided_at FROM "leave" WHERE staff_id = ? ORDER BY first_day', (staff_id,)),
        # Named as the target, or as a value in the detail (JSON: "NV001" in quotes, so NV0011 is not them).
        "audit": _rows(db, "SELECT at, actor, via, action, target, detail FROM audit_log "
                       "WHERE target = ? OR detail = ? OR detail LIKE ? ESCAPE '\\' ORDER BY id",
                       (staff_id, staff_id, _like_json_string(staff_id))),
        "pending_deletions": pending_deletions(db, staff_id),
        "deletions_done": _rows(db, "SELECT node_id, slot, requested_at, confirmed_at FROM finger_deletions "
                                "WHERE staff_id = ? AND confirmed_at IS NOT NULL ORDER BY id", (staff_id,)),
    }
    # Their work at a desk: sessions and the ratings of their service (without the citizens' dossier codes).
    out["desk_sessions"] = _rows(db, "SELECT desk_id, officer_name, opened_at, expires_at, closed_at FROM desk_sessions "
                                 "WHERE officer_id = ? ORDER BY opened_at", (staff_id,))
    out["ratings_of_their_service"] = _rows(db, "SELECT event_id, node_id, ts, local_date, desk_id, level, reasons "
                                            "FROM rating_events WHERE officer_id = ? ORDER BY ts", (staff_id,))
    accounts = _rows(db, "SELECT name, role, active, created_at, password_changed_at, last_login_at FROM web_users "
                     "WHERE staff_id = ? ORDER BY name", (staff_id,))
    out["console_accounts"] = accounts
    if accounts:  # what they did in the console, under their own accounts
        names = [a["name"] for a in accounts]
        out["audit_by_them"] = _rows(db, "SELECT at, via, action, target, detail FROM audit_log WHERE actor IN "
                                     f"({','.join('?' * len(names))}) ORDER BY id", names)
    return out


# -- retention ----------------------------------------------------------------------------------
def prune_events(db: sqlite_utils.Database, retention_days: int, today: date, dry_run: bool = False,
                 batch: int = PRUNE_BATCH) -> int:
    """Delete attendance events whose office day is more than ``retention_days`` before ``today``.

    0 keeps everything. Deleted ``batch`` rows per transaction (the local_date
    index), so the doors' check-ins are never held up for long. ``dry_run``:
    only count. Returns how many rows went (or would go).
    """
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or retention_days < 0:
        raise PrivacyError(f"retention_days must be a whole number from 0, got {retention_days!r}")
    if retention_days == 0:
        return 0
    cutoff = (today - timedelta(days=retention_days)).isoformat()
    if dry_run:
        return db.execute("SELECT count(*) FROM attendance_events WHERE local_date < ?", (cutoff,)).fetchone()[0]
    total = 0
    while True:
        with db.conn:
            n = db.conn.execute(
                "DELETE FROM attendance_events WHERE rowid IN "
                "(SELECT rowid FROM attendance_events WHERE local_date < ? LIMIT ?)", (cutoff, batch)).rowcount
        total += n
        if n < batch:
            break
        time.sleep(0.01)  # let a waiting writer (ingest) in between batches
    if total:
        log.info("retention: removed %d attendance events from before %s (%d days)", total, cutoff, retention_days)
    return total


def prune_cutoff(retention_days: int, today: date) -> str | None:
    """The first office day kept, or None when everything is kept."""
    return None if not retention_days else (today - timedelta(days=retention_days)).isoformat()


class Rounds:
    """The gateway's periodic privacy work, on the publisher's tick: retries now and then, pruning once a day."""

    def __init__(self, db: sqlite_utils.Database, settings, monotonic=time.monotonic):
        self.db, self.settings, self.monotonic = db, settings, monotonic
        self.tz = settings.site.timezone
        self._retried_at: float | None = None
        self._pruned_at: float | None = None

    def tick(self) -> None:
        now = self.monotonic()
        if self._retried_at is None or now - self._retried_at >= RETRY_EVERY_S:
            self._retried_at = now
            try:
                retry_deletions(self.db, self.tz)
            except Exception:  # never in the way of the state and the commands
                log.exception("asking the doors again for their pending deletions failed")
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            try:
                self.prune()
            except Exception:
                log.exception("the attendance retention round failed; trying again tomorrow")

    def prune(self) -> int:
        """Remove the attendance events past ``[privacy] attendance_retention_days``; one audit row if any went."""
        days = int(self.settings.privacy.attendance_retention_days)
        today = clock.now(self.tz).date()
        removed = prune_events(self.db, days, today)
        if removed:
            from . import audit
            audit.record(self.db, actor="gateway", via="gateway", action="privacy.prune_events",
                         target=prune_cutoff(days, today), detail={"removed": removed, "retention_days": days})
        return removed
