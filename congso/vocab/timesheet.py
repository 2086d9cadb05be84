"""The timesheet's symbols (Bảng chấm công, form C01-HD) and what each one counts as.

One home for the marks a session of a working day can get, shared by the
gateway's timesheet, its CLI, the console and the reports:

- ``+`` worked; a leave KIND (approved leave or an official absence);
  ``L`` public holiday; ``V`` absent without leave; ``-`` not a working day;
  ``None`` not over yet (``../shared/OFFICE.md``).
- ``TOTALS``: which symbols the form's "quy ra công" columns add up, in
  days (a session is half a day).

Pure: no I/O, standard library only.
"""

from __future__ import annotations

import unicodedata

WORKED, HOLIDAY, ABSENT, OFF = "+", "L", "V", "-"
SESSIONS = ("am", "pm")
SESSION_VI = {"am": "sáng", "pm": "chiều"}

# The leave kinds, in the form's order, with the words of its legend.
LEAVE_KINDS: dict[str, str] = {
    "P": "Nghỉ phép",
    "Ô": "Ốm, điều dưỡng",
    "Cô": "Con ốm",
    "Ts": "Thai sản",
    "T": "Tai nạn",
    "H": "Hội nghị, học tập",
    "Nb": "Nghỉ bù",
    "No": "Nghỉ không lương",
    "CT": "Đi công tác",
}

# Every mark a session can get, for the legend (the form prints it under the table).
LEGEND: dict[str, str] = {
    WORKED: "Làm việc",
    **LEAVE_KINDS,
    HOLIDAY: "Nghỉ lễ, Tết",
    ABSENT: "Vắng không phép",
    OFF: "Không phải ngày làm việc",
}

# The form's "quy ra công" columns: total -> the marks it counts (each session half a day).
TOTALS: dict[str, frozenset[str]] = {
    # Số công hưởng lương thời gian: at work, at a meeting or training, on an official trip.
    "worked_days": frozenset({WORKED, "H", "CT"}),
    # Số công nghỉ việc hưởng 100% lương: annual leave, compensatory rest, public holidays.
    "paid_leave_days": frozenset({"P", "Nb", HOLIDAY}),
    # Số công nghỉ không lương.
    "unpaid_days": frozenset({"No"}),
    # Số công hưởng BHXH: sick, child sick, maternity, work accident (paid by social insurance).
    "insurance_days": frozenset({"Ô", "Cô", "Ts", "T"}),
    # Vắng không phép.
    "absent_days": frozenset({ABSENT}),
}
TOTAL_TITLES_VI: dict[str, str] = {
    "worked_days": "Số công hưởng lương thời gian",
    "paid_leave_days": "Số công nghỉ hưởng 100% lương",
    "unpaid_days": "Số công nghỉ không lương",
    "insurance_days": "Số công hưởng BHXH",
    "absent_days": "Số công vắng không phép",
}


def _fold(text: str) -> str:
    """Without accents, upper case: "cô" and "Co" both read "CO" (a terminal may not type "ô")."""
    decomposed = unicodedata.normalize("NFD", text.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


_BY_FOLD = {_fold(k): k for k in LEAVE_KINDS}


def parse_kind(text: str) -> str:
    """A leave KIND as typed ("P", "ô", "O", "co", "ct") -> its symbol ("P", "Ô", "Cô", "CT").

    Raises ValueError naming the kinds. Accents and case are optional, as the
    kinds stay apart without them (O, CO, TS, T, H, NB, NO, CT, P).
    """
    kind = _BY_FOLD.get(_fold(str(text or "")))
    if kind is None:
        raise ValueError(f"leave kind must be one of {', '.join(LEAVE_KINDS)} (timesheet symbols), got {text!r}")
    return kind


def parse_half(text: str | None) -> str | None:
    """``--half am|pm`` (sáng/chiều accepted) -> "am", "pm"; None or "" -> None (whole days)."""
    if text is None or not str(text).strip():
        return None
    value = _fold(str(text))
    if value in ("AM", "SANG"):
        return "am"
    if value in ("PM", "CHIEU"):
        return "pm"
    raise ValueError(f"--half must be am or pm (the morning or the afternoon session), got {text!r}")


def day_symbol(am: str | None, pm: str | None) -> str:
    """The form's cell for a day: one symbol when both sessions agree, else "morning/afternoon".

    "+", "P", "+/P" (worked in the morning, annual leave in the afternoon),
    "V/+"; a session not over yet is empty ("+/" today at noon); a day that
    is not a working day is "" on the form (its column is shaded instead).
    """
    if am == pm:
        return "" if am in (None, OFF) else am
    return f"{'' if am in (None, OFF) else am}/{'' if pm in (None, OFF) else pm}"


def count(marks, total: str) -> float:
    """Days in ``total`` from a list of session marks (each session half a day)."""
    wanted = TOTALS[total]
    return sum(1 for m in marks if m in wanted) / 2


def days_number(value: float) -> int | float:
    """3.0 -> 3, 2.5 -> 2.5: the form and the JSON write whole days without ".0"."""
    return int(value) if float(value).is_integer() else value
