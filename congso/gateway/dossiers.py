"""Administrative dossiers (hồ sơ TTHC) at the gateway, and their public board.

The one-stop desk ("bộ phận một cửa") registers each dossier it receives:
its code, the applicant, the procedure, when it was received and when the
result is promised. Staff move it through the contract's statuses
(received -> processing -> [supplement_required] -> ready -> returned);
every change is kept in ``dossier_history``.

What leaves the gateway is the *board*: retained state ``dossiers`` with the
applicant's name masked ("Nguyễn Thị Thu Hà" -> "Nguyễn T. T. H."). The full
name stays in this database and in ``congso dossier list`` for staff.

Board rules (docs/signage.md):

- listed: every open dossier (received, processing, supplement_required),
  every one ready for pickup, and those returned today (a citizen who just
  picked up sees it done); older returned ones drop off;
- ``counts``: per status over the same dossiers, plus ``overdue`` (an
  addition to the contract: open, due date passed; it is derived, never
  stored);
- at most what fits in a 64 KiB message: the most useful first (ready,
  supplement required, overdue, then by due date); ``omitted`` (an addition)
  says how many were left out, so the TV can say so instead of pretending.

Dates: a date without a time is kept as ``YYYY-MM-DD`` (due "by the end of
that day"); with a time as RFC 3339 with the office's offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlite_utils

from ..protocol import messages
from ..vocab.dossiers import OPEN_STATUSES, STATUS_VI, STATUSES, is_overdue
from ..vocab import text as vocab_text
from ..vocab.text import nfc
from ..vocab.vietnamese import mask_name
from . import imports, state

# Retained payloads must stay under the 64 KiB limit with room to spare.
PAYLOAD_BUDGET = 60 * 1024


class DossierError(ValueError):
    """Input the dossier register cannot take; the message says what and where."""


def _fold(text: str) -> str:
    """Compare headers and status words whatever the case, spacing and Unicode form."""
    text = nfc(str(text)).strip().casefold()
    return re.sub(r"\s+", " ", text).strip(" :*")


# Status words as one-stop systems and staff write them.
_STATUS_WORDS = {
    "received": ["received", "đã tiếp nhận", "tiếp nhận", "mới tiếp nhận", "chờ xử lý", "mới"],
    "processing": ["processing", "đang xử lý", "đang giải quyết", "đang thụ lý", "đang thẩm định"],
    "supplement_required": ["supplement_required", "supplement", "yêu cầu bổ sung", "bổ sung hồ sơ",
                            "chờ bổ sung", "cần bổ sung", "bổ sung"],
    "ready": ["ready", "đã có kết quả", "có kết quả", "chờ trả kết quả", "chờ trả", "đã giải quyết"],
    "returned": ["returned", "đã trả kết quả", "đã trả", "trả kết quả", "hoàn thành"],
}
STATUS_ALIASES = {_fold(word): status for status, words in _STATUS_WORDS.items() for word in words}


def parse_status(text: str) -> str:
    status = STATUS_ALIASES.get(_fold(text or ""))
    if status is None:
        known = ", ".join(f"{s} ({STATUS_VI[s]})" for s in STATUSES)
        raise DossierError(f"unknown status {text!r}; use one of: {known}")
    return status


_DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_HM = re.compile(r"^(\d{1,2})[:hH](\d{2})(?::(\d{2}))?$")


def parse_when(text: str, tz: str) -> str:
    """A date or date-time as typed or exported -> "YYYY-MM-DD" or RFC 3339 with offset.

    Accepts 23/11/2026, 23/11/2026 14:30, 14:30 23/11/2026 (some one-stop
    systems put the time first), 2026-11-23, 2026-11-23 14:30, and RFC 3339.
    """
    raw = nfc(str(text)).strip()
    if not raw:
        raise DossierError("is empty")
    try:
        if "T" in raw or re.match(r"^\d{4}-\d{2}-\d{2} \d", raw):
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            dt = dt.replace(tzinfo=ZoneInfo(tz)) if dt.tzinfo is None else dt.astimezone(ZoneInfo(tz))
            return dt.isoformat(timespec="seconds")
        if re.match(r"^\d{4}-\d{2}-\d{2}$", raw):
            return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise DossierError(f"{raw!r} is not a valid date") from None
    parts = raw.split()
    day_part, time_part = None, None
    for part in parts:
        if _DMY.match(part) and day_part is None:
            day_part = part
        elif _HM.match(part) and time_part is None:
            time_part = part
        else:
            day_part = None
            break
    if day_part is None or len(parts) > 2:
        raise DossierError(f"{raw!r} is not a date; write 23/11/2026, 23/11/2026 14:30 or 2026-11-23")
    d, m, y = (int(x) for x in _DMY.match(day_part).groups())
    try:
        day = date(y, m, d)
        if time_part is None:
            return day.isoformat()
        hh, mm, ss = _HM.match(time_part).groups()
        at = datetime.combine(day, time(int(hh), int(mm), int(ss or 0)), ZoneInfo(tz))
    except ValueError as e:
        raise DossierError(f"{raw!r} is not a valid date ({e})") from None
    return at.isoformat(timespec="seconds")


# -- storage --------------------------------------------------------------------

@dataclass
class Dossier:
    code: str
    applicant: str
    procedure: str
    received_at: str
    due_at: str | None = None
    status: str = "received"
    desk: str | None = None
    online: bool | None = None  # submitted through the online portal; None: keep what is stored (an import)


class FieldError(DossierError):
    """One field of a dossier is bad (the API names it: ``field``)."""

    def __init__(self, field_name: str | None, message: str):
        self.field = field_name
        super().__init__(message)


def _clean_text(value, what: str, required: bool = True) -> str | None:
    """NFC, one space between words; a control or format character (a NUL
    from a bad export) is refused, naming the field: a TV must never draw it."""
    try:
        text = vocab_text.clean(value, what, max_len=500)
    except vocab_text.TextError as e:
        raise DossierError(str(e)) from None
    if not text and required:
        raise DossierError(f"{what} is empty")
    return text


def _check(d: Dossier) -> Dossier:
    if d.status not in STATUSES:
        raise DossierError(f"unknown status {d.status!r}")
    if d.due_at and d.received_at and d.due_at[:10] < d.received_at[:10]:
        raise DossierError(f"due date {d.due_at[:10]} is before the received date {d.received_at[:10]}")
    return d


def _now_iso(now: datetime) -> str:
    return now.isoformat(timespec="seconds")


def _write(db: sqlite_utils.Database, d: Dossier, now: datetime, source: str) -> str:
    """Insert or update one dossier inside the caller's transaction; 'new', 'updated' or 'unchanged'."""
    row = db.execute("SELECT applicant, procedure, received_at, due_at, status, desk, online FROM dossiers WHERE code=?",
                     (d.code,)).fetchone()
    at = _now_iso(now)
    if row is None:
        db.conn.execute(
            "INSERT INTO dossiers(code, applicant, procedure, received_at, due_at, status, desk, online, status_changed_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (d.code, d.applicant, d.procedure, d.received_at, d.due_at, d.status, d.desk, int(bool(d.online)), at, at))
        db.conn.execute("INSERT INTO dossier_history(code, status, at, source) VALUES (?,?,?,?)", (d.code, d.status, at, source))
        return "new"
    online = bool(row[6]) if d.online is None else bool(d.online)
    if tuple(row[:6]) == (d.applicant, d.procedure, d.received_at, d.due_at, d.status, d.desk) and online == bool(row[6]):
        return "unchanged"
    db.conn.execute(
        "UPDATE dossiers SET applicant=?, procedure=?, received_at=?, due_at=?, desk=?, online=?, updated_at=? WHERE code=?",
        (d.applicant, d.procedure, d.received_at, d.due_at, d.desk, int(online), at, d.code))
    if row[4] != d.status:
        _change_status(db, d.code, d.status, at, source)
    return "updated"


def _change_status(db, code: str, status: str, at: str, source: str) -> None:
    db.conn.execute("UPDATE dossiers SET status=?, status_changed_at=?, updated_at=? WHERE code=?", (status, at, at, code))
    db.conn.execute("INSERT INTO dossier_history(code, status, at, source) VALUES (?,?,?,?)", (code, status, at, source))


def add(db: sqlite_utils.Database, code: str, applicant: str, procedure: str, received: str, due: str | None = None,
        status: str = "received", desk: str | None = None, *, now: datetime, tz: str, online: bool = False,
        source: str = "cli") -> Dossier:
    """Register a new dossier (an existing code is an error: use set_status or import)."""
    d = _check(Dossier(
        code=_clean_text(code, "code"),
        applicant=_clean_text(applicant, "applicant"),
        procedure=_clean_text(procedure, "procedure"),
        received_at=parse_when(received, tz),
        due_at=parse_when(due, tz) if due else None,
        status=parse_status(status),
        desk=_clean_text(desk, "desk", required=False),
        online=bool(online),
    ))
    with db.conn:
        if db.execute("SELECT 1 FROM dossiers WHERE code=?", (d.code,)).fetchone():
            raise DossierError(f"dossier {d.code} already exists; change its status with `congso dossier set-status {d.code} STATUS`")
        _write(db, d, now, source)
    return d


def set_status(db: sqlite_utils.Database, code: str, status: str, *, now: datetime, source: str = "cli") -> tuple[str, str]:
    """Move a dossier to ``status``; returns (old, new). Recorded in the history."""
    new = parse_status(status)
    with db.conn:
        row = db.execute("SELECT status FROM dossiers WHERE code=?", (code.strip(),)).fetchone()
        if row is None:
            raise DossierError(f"no dossier with code {code!r}; see `congso dossier list`")
        if row[0] != new:
            _change_status(db, code.strip(), new, _now_iso(now), source)
    return row[0], new


def get(db: sqlite_utils.Database, code: str) -> dict | None:
    rows = list(db.query("SELECT * FROM dossiers WHERE code=?", [code]))
    return rows[0] if rows else None


def history(db: sqlite_utils.Database, code: str) -> list[dict]:
    return list(db.query("SELECT status, at, source FROM dossier_history WHERE code=? ORDER BY id", [code]))


def list_all(db: sqlite_utils.Database, status: str | None = None, open_only: bool = False) -> list[dict]:
    sql, params = "SELECT * FROM dossiers", []
    if status:
        sql += " WHERE status=?"
        params.append(parse_status(status))
    elif open_only:
        sql += f" WHERE status IN ({','.join('?' * len(OPEN_STATUSES))})"
        params += list(OPEN_STATUSES)
    return list(db.query(sql + " ORDER BY received_at, code", params))


# -- import -------------------------------------------------------------------

# Column headers as one-stop systems ("Một cửa điện tử", the provincial
# "Hệ thống thông tin giải quyết TTHC") and spreadsheets name them.
COLUMNS = {
    "code": ["mã hồ sơ", "số hồ sơ", "mã hs", "số biên nhận", "mã biên nhận", "code", "dossier code", "dossier_code"],
    "applicant": ["người nộp", "chủ hồ sơ", "tên người nộp", "người nộp hồ sơ", "họ tên người nộp", "họ và tên",
                  "họ tên", "tổ chức, cá nhân", "tổ chức/cá nhân", "applicant", "applicant name"],
    "procedure": ["thủ tục", "tên thủ tục", "thủ tục hành chính", "tên thủ tục hành chính", "tên tthc", "procedure"],
    "received": ["ngày tiếp nhận", "ngày nhận", "ngày nộp", "thời gian tiếp nhận", "received", "received_at",
                 "received at"],
    "due": ["ngày hẹn trả", "hẹn trả", "ngày hẹn trả kết quả", "thời gian hẹn trả", "due", "due_at", "due at",
            "due date"],
    "status": ["trạng thái", "tình trạng", "trạng thái hồ sơ", "status"],
    "desk": ["bộ phận", "quầy", "bộ phận tiếp nhận", "bộ phận giải quyết", "desk", "counter"],
}
HEADER_ALIASES = {_fold(name): key for key, names in COLUMNS.items() for name in names}
REQUIRED = ("code", "applicant", "procedure", "received")
HEADER_SEARCH_ROWS = 20  # exports often start with a title and a blank line


@dataclass
class ImportResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    encoding: str = "utf-8"
    ignored_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged"
        if self.encoding != "utf-8":
            text += f" (read as {self.encoding})"
        if self.ignored_columns:
            text += f"; ignored columns: {', '.join(self.ignored_columns)}"
        return text


class ImportError_(DossierError):
    """Every problem of a file, each with its line; nothing was imported."""

    def __init__(self, path: str, problems: list[str]):
        self.problems = problems
        shown = problems[:50]
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{path}: nothing imported, {len(problems)} problem(s):\n  " + "\n  ".join(shown) + more)


def parse_file(path: str | Path, tz: str) -> tuple[list[Dossier], ImportResult]:
    """Read and check a whole export; raises ImportError_ listing every bad line."""
    path = Path(path)
    try:
        table = imports.read_path(path)
    except imports.ImportFileError as e:
        raise DossierError(str(e)) from None
    rows, encoding = table.rows, table.encoding
    result = ImportResult(encoding=encoding)
    header_at, columns = None, {}
    for i, (line, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        found = {HEADER_ALIASES[_fold(c)]: j for j, c in reversed(list(enumerate(cells))) if _fold(c) in HEADER_ALIASES}
        if "code" in found:
            header_at, columns = i, found
            result.ignored_columns = [c.strip() for c in cells if c.strip() and _fold(c) not in HEADER_ALIASES]
            break
    if header_at is None:
        raise ImportError_(str(path), [f"no header row with a dossier code column (e.g. 'Mã hồ sơ') in the first {HEADER_SEARCH_ROWS} lines"])
    header_line = rows[header_at][0]
    missing = [k for k in REQUIRED if k not in columns]
    if missing:
        names = "; ".join(f"{k}: '{COLUMNS[k][0]}'" for k in missing)
        raise ImportError_(str(path), [f"line {header_line}: missing column(s) {names}"])

    problems: list[str] = []
    dossiers: list[Dossier] = []
    seen: dict[str, int] = {}
    for line, cells in rows[header_at + 1:]:
        if not any(c.strip() for c in cells):
            continue

        def cell(key):
            j = columns.get(key)
            return cells[j].strip() if j is not None and j < len(cells) else ""

        errors = []
        values = {}
        for key, label in (("code", "code"), ("applicant", "applicant"), ("procedure", "procedure"), ("desk", "desk")):
            try:
                values[key] = _clean_text(cell(key), label, required=False)
            except DossierError as e:
                values[key] = None
                errors.append(str(e))
                continue
            if not values[key] and key != "desk":
                errors.append(f"{label} is empty")
        for key in ("received", "due"):
            raw = cell(key)
            values[key] = None
            if raw:
                try:
                    values[key] = parse_when(raw, tz)
                except DossierError as e:
                    errors.append(f"{'received date' if key == 'received' else 'due date'}: {e}")
            elif key == "received":
                errors.append("received date is empty")
        status = cell("status")
        values["status"] = None
        if status:
            try:
                values["status"] = parse_status(status)
            except DossierError as e:
                errors.append(str(e))
        code = values["code"]
        if code and code in seen:
            errors.append(f"code {code} already appears on line {seen[code]}")
        elif code:
            seen[code] = line
        if not errors:
            d = Dossier(code, values["applicant"], values["procedure"], values["received"], values["due"],
                        values["status"] or "", values["desk"])
            try:
                _check(Dossier(**{**d.__dict__, "status": d.status or "received"}))
            except DossierError as e:
                errors.append(str(e))
            dossiers.append(d)
        problems += [f"line {line}: {e}" for e in errors]
    if problems:
        raise ImportError_(str(path), problems)
    return dossiers, result


def import_file(db: sqlite_utils.Database, path: str | Path, *, now: datetime, tz: str) -> ImportResult:
    """Import a one-stop export (CSV or XLSX): all rows or none. Existing codes are
    updated; a status that changed is recorded in the history; a row without a
    status keeps the dossier's current one (new dossiers: received)."""
    dossiers, result = parse_file(path, tz)
    with db.conn:
        for d in dossiers:
            if not d.status:
                row = db.execute("SELECT status FROM dossiers WHERE code=?", (d.code,)).fetchone()
                d.status = row[0] if row else "received"
            outcome = _write(db, d, now, "import")
            setattr(result, outcome, getattr(result, outcome) + 1)
    return result


# -- the public board ------------------------------------------------------------

def fit_items(base: dict, key: str, items: list[dict], budget: int = PAYLOAD_BUDGET) -> tuple[list[dict], int]:
    """The longest prefix of ``items`` that keeps ``base`` + items under ``budget`` bytes; and how many were left out."""
    size = len(messages.dumps({**base, key: [], "v": 1, "version": 2**31})) + 64
    kept = []
    for item in items:
        size += len(messages.dumps(item)) + 1
        if size > budget:
            break
        kept.append(item)
    return kept, len(items) - len(kept)


def _board_priority(d: dict, now: datetime) -> tuple:
    # Kept first when the board must be cut: results waiting for the citizen,
    # dossiers waiting on the citizen, late ones, then by due date.
    rank = {"ready": 0, "supplement_required": 1}.get(d["status"], 3)
    if rank == 3 and is_overdue(d["status"], d["due_at"], now):
        rank = 2
    if d["status"] == "returned":
        rank = 4
    return (rank, d["due_at"] or "9999", d["code"])


def board(db: sqlite_utils.Database, now: datetime) -> dict:
    """The ``dossiers`` retained payload (without v/version)."""
    today = now.date().isoformat()
    rows = list(db.query(
        "SELECT code, applicant, procedure, received_at, due_at, status, desk, status_changed_at FROM dossiers "
        "WHERE status != 'returned' OR substr(status_changed_at, 1, 10) >= ?", [today]))
    counts = {s: 0 for s in STATUSES}
    counts["overdue"] = 0
    for r in rows:
        counts[r["status"]] += 1
        counts["overdue"] += is_overdue(r["status"], r["due_at"], now)
    rows.sort(key=lambda r: _board_priority(r, now))
    items = [{
        "code": r["code"],
        "applicant": mask_name(r["applicant"]),  # the full name never leaves the gateway
        "procedure": r["procedure"],
        "received_at": r["received_at"],
        "due_at": r["due_at"],
        "status": r["status"],
        "desk": r["desk"],
    } for r in rows]
    base = {"generated_at": _now_iso(now), "counts": counts}
    kept, omitted = fit_items(base, "dossiers", items)
    return {**base, "dossiers": kept, "omitted": omitted}


def build(db: sqlite_utils.Database, ctx: state.Context) -> dict:
    payload = board(db, ctx.now)
    # generated_at changes every round; publish only when the board itself did.
    payload["generated_at"] = _generated_at(db, ctx.now)
    return {"dossiers": payload}


def _generated_at(db: sqlite_utils.Database, now: datetime) -> str:
    """When the register last changed (so an idle register is not re-published every 30 s)."""
    row = db.execute("SELECT max(updated_at) FROM dossiers").fetchone()
    at = row[0] if row and row[0] else None
    # The day turning changes overdue marks and drops returned ones: count it as a change.
    midnight = datetime.combine(now.date(), time(0), now.tzinfo).isoformat(timespec="seconds")
    return max(at, midnight) if at else midnight


DOMAIN = state.Domain("dossiers", builders=(build,))


# -- the console and the integration API ----------------------------------------------

def update(db: sqlite_utils.Database, code: str, applicant: str, procedure: str, received: str,
           due: str | None = None, desk: str | None = None, online: bool | None = None, *, now: datetime, tz: str,
           source: str = "web") -> Dossier:
    """Correct a dossier's fields (its status moves only through ``set_status``); kept in ``updated_at``."""
    current = get(db, code)
    if current is None:
        raise DossierError(f"no dossier with code {code!r}")
    d = _check(Dossier(
        code=current["code"],
        applicant=_field(lambda: _clean_text(applicant, "applicant"), "applicant"),
        procedure=_field(lambda: _clean_text(procedure, "procedure"), "procedure"),
        received_at=_field(lambda: parse_when(received, tz), "received_at", "received date: "),
        due_at=_field(lambda: parse_when(due, tz), "due_at", "due date: ") if due else None,
        status=current["status"],
        desk=_field(lambda: _clean_text(desk, "desk", required=False), "desk") or None,
        online=online,
    ))
    with db.conn:
        _write(db, d, now, source)
    return d


def _field(fn, name: str, prefix: str = ""):
    try:
        return fn()
    except FieldError:
        raise
    except DossierError as e:
        raise FieldError(name, f"{prefix}{e}") from None


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2}))?$")
PUT_FIELDS = ("applicant", "procedure", "received_at", "due_at", "status", "desk", "online")
PUT_REQUIRED = ("applicant", "procedure", "received_at", "due_at", "status")


def _rfc3339(value, name: str, tz: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _RFC3339.match(value.strip()):
        raise FieldError(name, f"{name} must be an RFC 3339 time with its offset (2026-11-23T14:30:00+07:00), got {value!r}")
    try:
        return parse_when(value.strip(), tz)
    except DossierError as e:
        raise FieldError(name, f"{name}: {e}") from None


def _text_field(value, name: str, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise FieldError(name, f"{name} must be a string")
    return _field(lambda: _clean_text(value, name, required=required), name) or None


def check_put(code: str, fields, tz: str) -> Dossier:
    """The API's body for one dossier, checked as an import checks a row; FieldError names the first bad field."""
    if not isinstance(fields, dict):
        raise FieldError(None, "the body must be a JSON object")
    code = _text_field(code, "code", True)
    # Other fields are ignored, as every congso receiver does (a one-stop
    # system sends what it has); only a code in the body that is not the
    # path's would be a contradiction.
    if "code" in fields and fields["code"] != code:
        raise FieldError("code", f"the body's code {str(fields['code'])[:100]!r} is not the path's {code!r}")
    for key in PUT_REQUIRED:
        if key not in fields:
            raise FieldError(key, f"{key} is required")
    status = fields["status"]
    if status not in STATUSES:
        raise FieldError("status", f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    online = fields.get("online")
    if online is not None and not isinstance(online, bool):
        raise FieldError("online", f"online must be true or false, got {online!r}")
    d = Dossier(
        code=code,
        applicant=_text_field(fields["applicant"], "applicant", True),
        procedure=_text_field(fields["procedure"], "procedure", True),
        received_at=_rfc3339(fields["received_at"], "received_at", tz),
        due_at=_rfc3339(fields["due_at"], "due_at", tz, required=False),
        status=status,
        desk=_text_field(fields.get("desk"), "desk", False),
        online=online,
    )
    try:
        return _check(d)
    except DossierError as e:
        raise FieldError("due_at", str(e)) from None


def put(db: sqlite_utils.Database, code: str, fields: dict, *, now: datetime, tz: str,
        source: str = "api") -> tuple[Dossier, bool]:
    """Create or update one dossier from the API's fields (all checked before anything is stored);
    returns (the dossier, whether it was created). A status change goes into the history."""
    d, outcome = put_outcome(db, code, fields, now=now, tz=tz, source=source)
    return d, outcome == "new"


def put_outcome(db: sqlite_utils.Database, code: str, fields: dict, *, now: datetime, tz: str,
                source: str = "api") -> tuple[Dossier, str]:
    """``put``, telling 'new', 'updated' or 'unchanged' (a nightly push of the same register changes nothing)."""
    d = check_put(code, fields, tz)
    with db.conn:
        outcome = _write(db, d, now, source)
    return d, outcome


def as_json(row: dict, now: datetime) -> dict:
    """A stored dossier for the authorised system (full name; ``overdue`` derived)."""
    return {
        "code": row["code"], "applicant": row["applicant"], "procedure": row["procedure"],
        "received_at": row["received_at"], "due_at": row["due_at"], "status": row["status"],
        "desk": row["desk"], "online": bool(row.get("online") or 0),
        "overdue": is_overdue(row["status"], row["due_at"], now),
        "status_changed_at": row.get("status_changed_at"), "updated_at": row.get("updated_at"),
    }


def _overdue_sql(now: datetime) -> tuple[str, list]:
    # The same rule as vocab.dossiers.is_overdue: open, and a due date before today or a due time passed.
    # Stored times carry the office's offset, so they compare as text.
    today = now.date().isoformat()
    at = _now_iso(now)
    marks = ",".join("?" * len(OPEN_STATUSES))
    return (f"(status IN ({marks}) AND due_at IS NOT NULL AND "
            "((length(due_at) = 10 AND due_at < ?) OR (length(due_at) > 10 AND due_at <= ?)))",
            [*OPEN_STATUSES, today, at])


def search(db: sqlite_utils.Database, q: str | None = None, status: str | None = None, overdue: bool = False,
           desk: str | None = None, page: int = 1, per_page: int = 50, now: datetime | None = None,
           online: bool | None = None) -> tuple[list[dict], int]:
    """One page of the register, newest received first, and how many match in all.

    ``q`` matches the code, the applicant or the procedure (any part);
    ``status`` is a wire status; ``overdue`` keeps the open ones past due
    (needs ``now``). Sorted by the ``received_at`` index and limited, so a
    page costs the same with 20,000 dossiers as with 200."""
    where, args = [], []
    if q and q.strip():
        like = "%" + nfc(q).strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(code LIKE ? ESCAPE '\\' OR applicant LIKE ? ESCAPE '\\' OR procedure LIKE ? ESCAPE '\\')")
        args += [like, like, like]
    if status:
        where.append("status = ?")
        args.append(parse_status(status))
    if overdue:
        sql, more = _overdue_sql(now or datetime.now().astimezone())
        where.append(sql)
        args += more
    if desk:
        where.append("desk = ?")
        args.append(desk)
    if online is not None:
        where.append("online = ?")
        args.append(int(bool(online)))
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = db.execute(f"SELECT count(*) FROM dossiers{clause}", args).fetchone()[0]
    page = max(1, int(page))
    rows = list(db.query(f"SELECT * FROM dossiers{clause} ORDER BY received_at DESC, code LIMIT ? OFFSET ?",
                         [*args, per_page, (page - 1) * per_page]))
    return rows, total


def desks(db: sqlite_utils.Database) -> list[str]:
    """The desks dossiers name (for the filter)."""
    return [r[0] for r in db.execute("SELECT DISTINCT desk FROM dossiers WHERE desk IS NOT NULL AND desk != '' ORDER BY desk")]
