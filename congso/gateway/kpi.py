"""The office's figures for a month: dossiers on time, dossiers online, satisfaction.

``month(db, "2026-11", tz)`` gives three shares, each a fraction (0..1) with
the counts behind it, or ``None`` when there is nothing to count:

- **on time**: the dossiers *due* in the month (``dossiers.due_at``, office
  dates). One is resolved when it reached ``ready`` or ``returned``
  (``vocab.dossiers.DONE_STATUSES``); the time it was resolved is read from
  ``dossier_history``: the first move into a done status after its last open
  status (a dossier reopened for a supplement and finished again counts from
  the second finish; ready -> returned keeps the time it became ready). It is
  on time when that was before the end of its due day (or before its due
  time, when one was given): the rule of ``vocab.dossiers.is_overdue``.
  Share = on time / (on time + late + still open and overdue); a dossier
  still open and not yet due is shown but not counted.
- **online**: the dossiers *received* in the month, and how many came
  through the online portal (``dossiers.online``). Share = online / received.
- **satisfaction**: the votes of the month (``rating_events.local_date``)
  without those the kiosk flagged as a burst of presses; satisfied = very
  satisfied + satisfied (``vocab.levels.SATISFIED_CODES``). Share =
  satisfied / votes. The flagged votes left out are counted apart.

Targets come from ``[kpi]`` (``online_target``, ``on_time_target``,
``satisfaction_target``); ``met`` says whether the share reached its target.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from io import BytesIO
from zoneinfo import ZoneInfo

import sqlite_utils

from ..protocol import messages
from ..vocab import levels as levels_mod
from ..vocab.dossiers import DONE_STATUSES, OPEN_STATUSES, as_datetime, is_overdue
from ..vocab.text import write_cell
from . import state


class KpiError(ValueError):
    """A month that is not YYYY-MM."""


TARGET_KEYS = {"on_time": "on_time_target", "online": "online_target", "satisfaction": "satisfaction_target"}
TITLES_VI = {
    "on_time": "Hồ sơ giải quyết đúng hạn",
    "online": "Hồ sơ nộp trực tuyến",
    "satisfaction": "Mức độ hài lòng",
}
TITLES_EN = {"on_time": "Dossiers resolved on time", "online": "Dossiers submitted online",
             "satisfaction": "Satisfaction"}


def month_bounds(month: str) -> tuple[date, date]:
    """("YYYY-MM") -> (its first day, the first day of the next month)."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", (month or "").strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise KpiError(f"month must be YYYY-MM, e.g. 2026-11, got {month!r}")
    y, mo = int(m.group(1)), int(m.group(2))
    first = date(y, mo, 1)
    return first, date(y + (mo == 12), mo % 12 + 1, 1)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _resolved_at(history: list[tuple[str, str]]) -> str | None:
    """The time a dossier reached its final done status: the first done after the last open one."""
    at = None
    for status, when in history:
        if status in DONE_STATUSES:
            at = at or when
        else:
            at = None
    return at


def _on_time(db: sqlite_utils.Database, first: date, nxt: date, tz: ZoneInfo, now: datetime) -> dict:
    rows = db.execute(
        "SELECT code, status, due_at, status_changed_at FROM dossiers WHERE due_at >= ? AND due_at < ?",
        (first.isoformat(), nxt.isoformat())).fetchall()
    history: dict[str, list[tuple[str, str]]] = {}
    if rows:
        # The history of the resolved ones only; CROSS JOIN keeps SQLite on the dossiers first,
        # then on the history's code index (a year holds some 100,000 history rows).
        marks = ",".join("?" * len(DONE_STATUSES))
        for code, status, at in db.execute(
                "SELECT h.code, h.status, h.at FROM dossiers d CROSS JOIN dossier_history h ON h.code = d.code "
                f"WHERE d.due_at >= ? AND d.due_at < ? AND d.status IN ({marks}) ORDER BY h.id",
                (first.isoformat(), nxt.isoformat(), *DONE_STATUSES)):
            history.setdefault(code, []).append((status, at))
    on_time = late = overdue = not_due = 0
    for code, status, due_at, changed_at in rows:
        if status in DONE_STATUSES:
            at = _resolved_at(history.get(code, [])) or changed_at
            try:
                done = datetime.fromisoformat(at)
                deadline = as_datetime(due_at, tz, end_of_day=True)
            except ValueError:
                continue
            if done.tzinfo is None:
                done = done.replace(tzinfo=tz)
            if done < deadline:
                on_time += 1
            else:
                late += 1
        elif status in OPEN_STATUSES:
            if is_overdue(status, due_at, now):
                overdue += 1
            else:
                not_due += 1
    counted = on_time + late + overdue
    return {"due": len(rows), "on_time": on_time, "late": late, "open_overdue": overdue,
            "open_not_due": not_due, "counted": counted, "share": _share(on_time, counted)}


def _online(db: sqlite_utils.Database, first: date, nxt: date) -> dict:
    received, online = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(online != 0), 0) FROM dossiers WHERE received_at >= ? AND received_at < ?",
        (first.isoformat(), nxt.isoformat())).fetchone()
    return {"received": received, "online": online, "share": _share(online, received)}


def _satisfaction(db: sqlite_utils.Database, first: date, nxt: date) -> dict:
    last = date.fromordinal(nxt.toordinal() - 1).isoformat()
    counts: dict[str, int] = {}
    flagged = 0
    for level, burst, n in db.execute(
            "SELECT level, COALESCE(json_extract(payload, '$.burst'), 0) != 0, COUNT(*) FROM rating_events "
            "WHERE local_date BETWEEN ? AND ? GROUP BY 1, 2", (first.isoformat(), last)):
        if burst:
            flagged += n
        else:
            counts[level] = counts.get(level, 0) + n
    votes = sum(counts.values())
    satisfied = sum(n for code, n in counts.items() if code in levels_mod.SATISFIED_CODES)
    ordered = {c: counts[c] for c in messages.RATING_LEVELS if c in counts}
    ordered.update({c: n for c, n in counts.items() if c not in ordered})
    return {"votes": votes, "satisfied": satisfied, "flagged_excluded": flagged, "levels": ordered,
            "share": _share(satisfied, votes)}


def month(db: sqlite_utils.Database, month: str, tz: str, now: datetime | None = None,
          targets: dict | None = None) -> dict:
    """The month's three figures (see the module's docstring); ``targets``: ``settings.kpi.as_dict()``."""
    first, nxt = month_bounds(month)
    zone = ZoneInfo(tz)
    now = now.astimezone(zone) if now is not None else datetime.now(zone)
    out = {
        "month": f"{first:%Y-%m}",
        "generated_at": now.isoformat(timespec="seconds"),
        "on_time": _on_time(db, first, nxt, zone, now),
        "online": _online(db, first, nxt),
        "satisfaction": _satisfaction(db, first, nxt),
    }
    for key, setting in TARGET_KEYS.items():
        target = (targets or {}).get(setting)
        share = out[key]["share"]
        out[key]["target"] = target
        # A share equal to its target meets it, whatever the float's last bit (27/30 against 0.9).
        out[key]["met"] = None if target is None or share is None else share >= target - 1e-9
    return out


def pct(share: float | None) -> str:
    """0.6667 -> "66,7%" (Vietnamese decimal comma); None -> "—"."""
    if share is None:
        return "—"
    return f"{100 * share:.1f}".replace(".", ",") + "%"


def counts_vi(key: str, fig: dict) -> str:
    """The counts behind one figure, in Vietnamese."""
    if key == "on_time":
        return (f"{fig['on_time']}/{fig['counted']} hồ sơ đến hạn (trễ hạn {fig['late']}, "
                f"chưa giải quyết đã quá hạn {fig['open_overdue']}, chưa đến hạn {fig['open_not_due']})")
    if key == "online":
        return f"{fig['online']}/{fig['received']} hồ sơ tiếp nhận"
    return f"{fig['satisfied']}/{fig['votes']} phiếu hài lòng (loại {fig['flagged_excluded']} phiếu nghi bấm liên tục)"


def counts_en(key: str, fig: dict) -> str:
    if key == "on_time":
        return (f"{fig['on_time']}/{fig['counted']} due (late {fig['late']}, open and overdue {fig['open_overdue']}, "
                f"open, not yet due {fig['open_not_due']})")
    if key == "online":
        return f"{fig['online']}/{fig['received']} received"
    return f"{fig['satisfied']}/{fig['votes']} votes satisfied ({fig['flagged_excluded']} flagged left out)"


def _met(value: bool | None, vi: bool) -> str:
    if value is None:
        return "—"
    return ("Đạt" if value else "Chưa đạt") if vi else ("yes" if value else "no")


def table(k: dict, lang: str = "vi") -> tuple[list[str], list[list[str]]]:
    """Headers and one row per figure: name, share, counts, target, met."""
    vi = lang == "vi"
    headers = (["Chỉ tiêu", "Tỷ lệ", "Số liệu", "Mục tiêu", "Kết quả"] if vi
               else ["Figure", "Share", "Counts", "Target", "Met"])
    rows = []
    for key in TARGET_KEYS:
        fig = k[key]
        rows.append([(TITLES_VI if vi else TITLES_EN)[key], pct(fig["share"]),
                     (counts_vi if vi else counts_en)(key, fig), pct(fig["target"]), _met(fig["met"], vi)])
    return headers, rows


def xlsx_bytes(k: dict, unit: str = "") -> bytes:
    """The month's figures as a workbook (Vietnamese), every cell through ``write_cell``."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    first, _ = month_bounds(k["month"])
    wb = Workbook()
    ws = wb.active
    ws.title = "Chỉ tiêu"
    write_cell(ws, 1, 1, f"Chỉ tiêu tháng {first:%m/%Y}").font = Font(bold=True, size=13)
    write_cell(ws, 2, 1, unit)
    headers, rows = table(k, "vi")
    for c, h in enumerate(headers, start=1):
        write_cell(ws, 4, c, h).font = Font(bold=True)
    for r, row in enumerate(rows, start=5):
        for c, value in enumerate(row, start=1):
            write_cell(ws, r, c, value)
    for col, width in zip("ABCDE", (30, 10, 80, 10, 10)):
        ws.column_dimensions[col].width = width
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


# -- the hall TV's kpi page (retained state/kpi) ---------------------------------------

_PARTS = {"on_time": ("on_time", "counted"), "online": ("online", "received"), "satisfaction": ("satisfied", "votes")}


def wire(k: dict) -> dict:
    """The month's figures as the TV gets them: share, part, whole and target of each (no names, no codes)."""
    out: dict = {"month": k["month"]}
    for key, (part, whole) in _PARTS.items():
        fig = k[key]
        out[key] = {"share": fig["share"], "part": fig[part], "whole": fig[whole], "target": fig["target"]}
    return out


def build(db: sqlite_utils.Database, ctx: state.Context) -> dict[str, dict | None]:
    """state/kpi: the figures of the month ``ctx.now`` is in, against the gateway's [kpi] targets."""
    settings = ctx.settings
    targets = settings.kpi.as_dict() if settings is not None else None
    return {"kpi": wire(month(db, f"{ctx.now:%Y-%m}", ctx.tz, now=ctx.now, targets=targets))}


DOMAIN = state.Domain("kpi", builders=(build,))
