"""Dossier statuses, what citizens read for each, and the overdue rule.

The gateway applies these when it builds the board; the TV applies them
again as time passes while it is offline (a dossier becomes overdue at
midnight whether or not the gateway says so). One home, so the two agree.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

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
