"""The "current announcement" rule, shared by the gateway's CLI and the TV.

``valid_from``/``valid_until`` are RFC 3339 (the gateway stores a date
alone as its first / last second), either may be missing.
"""

from __future__ import annotations

from datetime import datetime


def has_ended(item: dict, now: datetime) -> bool:
    """Its window closed: the gateway stops publishing it."""
    return bool(item.get("valid_until")) and datetime.fromisoformat(item["valid_until"]) < now


def is_current(item: dict, now: datetime) -> bool:
    """Shown now: started (or no start) and not ended. An unparsable time raises ValueError."""
    if item.get("valid_from") and datetime.fromisoformat(item["valid_from"]) > now:
        return False
    return not has_ended(item, now)
