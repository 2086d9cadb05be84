"""A day as people in the office type it: dd/mm/yyyy (the Vietnamese way) or YYYY-MM-DD (a date input).

One parser for every shell (the CLI's options, the console's forms, the
reports): the callers only choose the message's wording and their error
class. Pure: the standard library only.
"""

from __future__ import annotations

import re
from datetime import date

_DMY = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def parse_day(value: str) -> date:
    """"25/11/2026", "25.11.2026", "25-11-2026" or "2026-11-25" -> date; ValueError otherwise."""
    typed = str(value or "").strip()
    m = _DMY.fullmatch(typed)
    if m:
        return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    return date.fromisoformat(typed)
