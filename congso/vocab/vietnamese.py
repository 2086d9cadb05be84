"""Vietnamese for what citizens see: dates, times, masked names.

Pure: the TV draws with it, the gateway masks the board's names with it.
"""

from __future__ import annotations

from datetime import date, datetime

from .text import nfc

WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")


def weekday(d: date) -> str:
    return WEEKDAYS[d.weekday()]


def long_date(d: date) -> str:
    """"Thứ Hai, 23/11/2026"."""
    return f"{weekday(d)}, {d.day:02d}/{d.month:02d}/{d.year}"


def short_date(d: date) -> str:
    """"23/11/2026"."""
    return f"{d.day:02d}/{d.month:02d}/{d.year}"


def hhmm(dt: datetime) -> str:
    return f"{dt.hour:02d}:{dt.minute:02d}"


def mask_name(full_name: str) -> str:
    """Family name kept, the other names as initials: "Nguyễn Thị Thu Hà" -> "Nguyễn T. T. H.".

    Vietnamese names put the family name first. A one-word name is kept as
    its initial only ("Hà" -> "H."): a lone given name identifies more than a
    family name does.
    """
    words = nfc(full_name).split()
    if not words:
        return ""
    if len(words) == 1:
        return words[0][0].upper() + "."
    return " ".join([words[0]] + [w[0].upper() + "." for w in words[1:]])
