"""Dossier statuses, what citizens read for each, and the overdue rule.

The gateway applies these when it builds the board; the TV applies them
again as time passes while it is offline (a dossier becomes overdue at
midnight whether or not the gateway says so). One home, so the two agree.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from urllib.parse import unquote, urlsplit

# The wire values (protocol.messages.DOSSIER_STATUSES; a test keeps them equal).
STATUSES = ("received", "processing", "supplement_required", "ready", "returned")
OPEN_STATUSES = ("received", "processing", "supplement_required")
DONE_STATUSES = ("ready", "returned")

# What the screen and the Vietnamese exports call each status; "overdue" is
# derived (open and past due), never stored.
STATUS_VI = {
    "received": "Đã tiếp nhận",
    "processing": "Đang xử lý",
    "supplement_required": "Yêu cầu bổ sung",
    "ready": "Đã có kết quả",
    "returned": "Đã trả kết quả",
    "overdue": "Quá hạn",
}

# One colour per status wherever a status is drawn (the TV's tiles and rows).
STATUS_COLORS = {
    "received": (40, 100, 180),
    "processing": (0, 128, 128),
    "supplement_required": (230, 150, 0),
    "ready": (24, 128, 56),
    "overdue": (200, 32, 32),
    "returned": (96, 104, 116),
}


def as_datetime(value: str, tzinfo, end_of_day: bool = False) -> datetime:
    """A stored date ("YYYY-MM-DD": its start, or its end) or RFC 3339 time, as an aware datetime."""
    if len(value) == 10:
        day = date.fromisoformat(value)
        if end_of_day:
            return datetime.combine(day + timedelta(days=1), time(0), tzinfo)
        return datetime.combine(day, time(0), tzinfo)
    return datetime.fromisoformat(value)


def is_overdue(status: str, due_at: str | None, now: datetime) -> bool:
    """Open and its due time passed (a due date alone: the whole day counts)."""
    if status not in OPEN_STATUSES or not due_at:
        return False
    try:
        return now >= as_datetime(due_at, now.tzinfo, end_of_day=True)
    except ValueError:
        return False


# The national dossier code (Decision 20/2020/QĐ-TTg style as one-stop systems print it):
# agency code "000.00.12.H56", the receipt date yymmdd, a 4+ digit number.
CODE_RE = re.compile(r"(?<![0-9A-Za-z.])(\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})-(\d{2})(\d{2})(\d{2})-(\d{4,6})(?![0-9A-Za-z])")


def code_in_scan(text: str) -> str | None:
    """The dossier code a scanned receipt holds (its Code 128, or a QR of the portal's URL with the
    code in it), or None: the scan is not one (the kiosk's barcode scanner, docs/rating.md)."""
    text = text.strip()
    if text.lower().startswith(("http://", "https://")):
        try:
            parts = urlsplit(text)
        except ValueError:
            return None
        found = {m.group(0) for m in CODE_RE.finditer(unquote(f"{parts.path}?{parts.query}#{parts.fragment}").upper())}
        return _with_real_date(found.pop()) if len(found) == 1 else None
    m = CODE_RE.fullmatch(text.upper())
    return _with_real_date(m.group(0)) if m else None


def _with_real_date(code: str) -> str | None:
    m = CODE_RE.fullmatch(code)
    yy, mm, dd = int(m.group(2)), int(m.group(3)), int(m.group(4))
    try:
        date(2000 + yy, mm, dd)
    except ValueError:
        return None  # 261301: no 13th month; a misread digit
    return code
