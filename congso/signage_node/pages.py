"""The TV's pages as pure functions: (view, size) -> drawing instructions.

Nothing here touches pygame or the network, so every page is tested
without a screen and the same functions serve 1280×720, 4K and portrait:
every length is designed at 1280×720 and scaled by the shorter side
(``layout.px``); the renderer fits each text inside its box.

A page that has never received its data is skipped (``slots``); one whose
data arrived but is empty says so in Vietnamese ("Hiện không có hồ sơ ...").
Nothing is ever invented to fill a screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import quote

from ..ui import QR, Box, Circle, Fill, Image, Line, Text
from ..ui.layout import inset, px, split_h, split_v
from ..ui.layout import scale as layout_scale
from ..vocab import levels as rating_levels
from ..vocab import vietnamese
from ..vocab.announcements import is_current
from ..vocab.dossiers import STATUS_COLORS, STATUS_VI, as_datetime, is_overdue
from ..vocab.schedule import is_on

# Colours: dark text on a light page reads best across a hall; the header
# and footer in the blue of Vietnamese public-service portals.
NAVY = (0, 56, 112)
WHITE = (255, 255, 255)
PAGE = (244, 246, 249)
INK = (28, 32, 40)
MUTED = (96, 104, 116)
ROW_ALT = (230, 235, 242)
RED = (200, 32, 32)
GREEN = (24, 128, 56)
TODAY = (255, 244, 200)
PAGE_NAMES = ("dossiers", "ready", "calendar", "announcements", "slides", "ratings", "kpi")
LETTERBOX = (12, 16, 24)  # around a picture slide that does not fill the screen


@dataclass(frozen=True)
class View:
    """Everything a frame depends on (besides the screen size)."""

    site_name: str
    now: datetime  # office time
    states: dict = field(default_factory=dict)  # name -> payload as received
    clock_synced: bool = True
    offline: bool = False  # no link to the broker
    updated_at: datetime | None = None  # when the data was last known current
    stale: bool = False  # older than [signage] stale_after_s
    node_id: str = ""  # this TV's id (an urgent notice may name the TVs it is for)
    desk: str = ""  # [signage] desk: a TV above one desk shows only its dossiers
    dossier_url: str = ""  # [signage] dossier_url: the portal's page of a dossier, with {code}
    # Slides: the original's sha256 -> the cached file chosen for this screen
    # (absent: not fetched yet, so not shown); videos that failed lately.
    media: dict = field(default_factory=dict)
    video_failed: frozenset = frozenset()


# -- frame: header, page title -------------------------------------------------------

def header_height(size) -> int:
    return px(72, size)


def footer_height(size) -> int:
    return px(44, size)


def header(view: View, size) -> list:
    w = size[0]
    hh = header_height(size)
    pad = px(16, size)
    shares = [5.2, 3.3, 1.5] if size[0] >= size[1] else [3.4, 4.6, 2.0]  # portrait: room for the status line
    name_r, info_r, clock_r = split_h(inset((0, 0, w, hh), pad, px(6, size)), shares, gap=pad)
    out = [Box((0, 0, w, hh), NAVY),
           Text(name_r, view.site_name, WHITE, px(30, size), bold=True, max_lines=2, tag="site"),
           Text(clock_r, vietnamese.hhmm(view.now), WHITE, px(40, size), align="right", bold=True, tag="clock")]
    date_r, status_r = split_v(info_r, [1, 1])
    out.append(Text(date_r, vietnamese.long_date(view.now.date()), WHITE, px(22, size), align="right", tag="date"))
    notes = []
    if view.offline or view.stale:
        when = f"Cập nhật lúc {vietnamese.hhmm(view.updated_at)}" if view.updated_at else "Chưa cập nhật"
        if view.updated_at and view.updated_at.date() != view.now.date():
            when += f" {view.updated_at.day:02d}/{view.updated_at.month:02d}"
        notes.append(("Mất kết nối · " if view.offline else "") + when)
    if not view.clock_synced:
        notes.append("Đồng hồ chưa đồng bộ")
    if notes:
        r = px(7, size)
        sx, sy, sw, sh = status_r
        out.append(Text((sx, sy, sw - 3 * r, sh), " · ".join(notes), (255, 214, 110), px(16, size), align="right", tag="stale"))
        if view.offline:
            out.append(Circle((sx + sw - r, sy + sh // 2), r, RED))
    return out


def _title(size, title: str, page_no: str = "") -> tuple[list, tuple]:
    """The page's title bar; returns its instructions and the body rect below it."""
    w, h = size
    top = header_height(size)
    th = px(50, size)
    pad = px(20, size)
    left, right = split_h((pad, top, w - 2 * pad, th), [4, 1])
    out = [Text(left, title, NAVY, px(28, size), bold=True, tag="page-title")]
    if page_no:
        out.append(Text(right, page_no, MUTED, px(20, size), align="right", tag="page-number"))
    body = (pad, top + th, w - 2 * pad, h - top - th - footer_height(size) - px(10, size))
    return out, body


def _message(body, size, text: str) -> list:
    return [Text(body, text, MUTED, px(32, size), align="center", max_lines=3, tag="message")]


def _page_label(i: int, n: int) -> str:
    return f"Trang {i + 1}/{n}" if n > 1 else ""


# -- dossiers --------------------------------------------------------------------

COLUMNS = (("code", "Mã hồ sơ", 2.3), ("applicant", "Người nộp", 1.8), ("procedure", "Thủ tục", 3.0),
           ("due", "Hẹn trả", 1.4), ("status", "Trạng thái", 1.7))


def _due_text(due: str | None) -> str:
    if not due:
        return "—"
    if len(due) == 10:
        d = date.fromisoformat(due)
        return f"{d.day:02d}/{d.month:02d}/{d.year}"
    at = datetime.fromisoformat(due)
    return f"{vietnamese.hhmm(at)} {at.day:02d}/{at.month:02d}"


def _dossier_geometry(size):
    _, body = _title(size, "")
    counts_h = px(74, size)
    row_h = px(40, size)
    table = (body[0], body[1] + counts_h + px(10, size), body[2], body[3] - counts_h - px(10, size))
    rows = max(1, (table[3] - row_h) // row_h)  # minus the column headings
    return body, counts_h, table, row_h, rows


def _desk_items(view: View, payload: dict) -> list[dict]:
    """The payload's dossiers, only this TV's desk's when [signage] desk is set."""
    items = payload.get("dossiers", [])
    if not view.desk:
        return items
    wanted = view.desk.strip().casefold()
    return [d for d in items if (d.get("desk") or "").strip().casefold() == wanted]


def _desk_title(view: View, title: str) -> str:
    return f"{title} — Quầy {view.desk.strip()}" if view.desk.strip() else title


def _board_rows(view: View, payload: dict, now: datetime) -> list[dict]:
    rows = [d for d in _desk_items(view, payload) if d["status"] != "returned"]
    return sorted(rows, key=lambda d: (not is_overdue(d["status"], d["due_at"], now), d["due_at"] or "9999", d["code"]))


def dossier_pages(view: View, size) -> int:
    payload = view.states.get("dossiers")
    if payload is None:
        return 0
    rows = _board_rows(view, payload, view.now)
    per = _dossier_geometry(size)[4] - (1 if _omitted(view, payload) else 0)
    return max(1, -(-len(rows) // max(1, per)))


def _omitted(view: View, payload: dict) -> int:
    # The gateway counts what it left out for the whole office, not per desk: a desk's TV cannot say.
    return 0 if view.desk else (payload.get("omitted") or 0)


def dossiers_page(view: View, size, index: int = 0) -> list:
    payload = view.states["dossiers"]
    n = dossier_pages(view, size)
    index = min(index, n - 1)
    title, _ = _title(size, _desk_title(view, "Tình hình giải quyết hồ sơ"), _page_label(index, n))
    body, counts_h, table, row_h, per = _dossier_geometry(size)
    out = list(title)
    rows = _board_rows(view, payload, view.now)
    mine = _desk_items(view, payload)
    overdue_now = sum(is_overdue(d["status"], d["due_at"], view.now) for d in mine)
    if view.desk:  # the payload's counts are the whole office's: count this desk's own
        counts = {key: sum(d["status"] == key for d in mine) for key in STATUS_VI}
    else:
        counts = dict(payload.get("counts", {}))
    counts["overdue"] = max(counts.get("overdue", 0), overdue_now)  # time passes while offline
    tiles = ("received", "processing", "supplement_required", "ready", "overdue")
    for key, r in zip(tiles, split_h((body[0], body[1], body[2], counts_h), [1] * len(tiles), gap=px(10, size))):
        color = STATUS_COLORS[key]
        out.append(Box(r, color, radius=px(8, size)))
        num_r, label_r = split_v(inset(r, px(8, size), px(4, size)), [1.3, 1])
        out.append(Text(num_r, str(counts.get(key, 0)), WHITE, px(32, size), align="center", bold=True, tag=f"count-{key}"))
        out.append(Text(label_r, STATUS_VI[key], WHITE, px(16, size), align="center", tag=f"label-{key}"))
    if not rows:
        return out + _message(table, size, "Hiện không có hồ sơ đang chờ giải quyết")
    omitted = _omitted(view, payload)
    per_page = max(1, per - (1 if omitted else 0))
    shown = rows[index * per_page:(index + 1) * per_page]
    x, y, w, _ = table
    cols = split_h((x, y, w, row_h), [c[2] for c in COLUMNS])
    cell_pad = px(8, size)
    out.append(Box((x, y, w, row_h), NAVY))
    for (key, label, _), c in zip(COLUMNS, cols):
        out.append(Text(inset(c, cell_pad, px(4, size)), label, WHITE, px(18, size), bold=True, tag=f"th-{key}"))
    for i, d in enumerate(shown):
        ry = y + row_h * (i + 1)
        late = is_overdue(d["status"], d["due_at"], view.now)
        bg = RED if late else (ROW_ALT if i % 2 else WHITE)
        fg = WHITE if late else INK
        out.append(Box((x, ry, w, row_h), bg))
        status = "Quá hạn" if late else STATUS_VI[d["status"]]
        values = {"code": d["code"], "applicant": d["applicant"], "procedure": d["procedure"],
                  "due": _due_text(d["due_at"]), "status": status}
        for (key, _, _), c in zip(COLUMNS, cols):
            cell = inset((c[0], ry, c[2], row_h), cell_pad, px(3, size))
            color = fg if late or key != "status" else STATUS_COLORS[d["status"]]
            out.append(Text(cell, values[key], color, px(20, size), bold=key == "status",
                            tag=f"row{i}-{key}" + ("-overdue" if late else "")))
    if omitted:
        ry = y + row_h * (per_page + 1)
        out.append(Text((x, ry, w, row_h), f"… và {omitted} hồ sơ khác, xin hỏi tại bộ phận một cửa", MUTED,
                        px(18, size), align="center", tag="omitted"))
    return out


# -- ready for pickup ---------------------------------------------------------------

def _ready_rows(view: View) -> list[dict]:
    payload = view.states.get("dossiers") or {}
    return sorted((d for d in _desk_items(view, payload) if d["status"] == "ready"), key=lambda d: d["code"])


def dossier_link(view: View, code: str) -> str:
    """The portal's page of dossier ``code`` ([signage] dossier_url), or "" when not set."""
    return view.dossier_url.replace("{code}", quote(code, safe="")) if view.dossier_url else ""


def _ready_geometry(size):
    _, body = _title(size, "")
    cols = 3 if size[0] >= size[1] else 2
    card_h = px(86, size)
    gap = px(10, size)
    rows = max(1, (body[3] + gap) // (card_h + gap))
    return body, cols, rows, card_h, gap


def ready_pages(view: View, size) -> int:
    rows = _ready_rows(view)
    if not rows:
        return 0  # nobody to call: the page is skipped
    _, cols, per_col, _, _ = _ready_geometry(size)
    return -(-len(rows) // (cols * per_col))


def ready_page(view: View, size, index: int = 0) -> list:
    rows = _ready_rows(view)
    n = max(1, ready_pages(view, size))
    index = min(index, n - 1)
    title, _ = _title(size, _desk_title(view, "Hồ sơ đã có kết quả — mời ông/bà đến nhận"), _page_label(index, n))
    body, cols, per_col, card_h, gap = _ready_geometry(size)
    out = list(title)
    per = cols * per_col
    col_rects = split_h(body, [1] * cols, gap=gap)
    for i, d in enumerate(rows[index * per:(index + 1) * per]):
        cx, _, cw, _ = col_rects[i % cols]
        r = (cx, body[1] + (i // cols) * (card_h + gap), cw, card_h)
        out.append(Box(r, WHITE, radius=px(8, size)))
        out.append(Box((r[0], r[1], px(8, size), r[3]), GREEN))
        link = dossier_link(view, d["code"])
        if link:  # a square QR at the card's right end: the citizen opens the dossier on the portal
            q = r[3] - px(4, size)
            out.append(QR((r[0] + r[2] - q - px(2, size), r[1] + px(2, size), q, q), link))
            r = (r[0], r[1], r[2] - q - px(4, size), r[3])
        a, b, c = split_v(inset(r, px(16, size), px(6, size)), [1.2, 1.1, 0.9])
        out.append(Text(a, d["code"], INK, px(22, size), bold=True, tag=f"ready{i}-code"))
        out.append(Text(b, d["applicant"], INK, px(22, size), tag=f"ready{i}-applicant"))
        out.append(Text(c, d["procedure"], MUTED, px(16, size), tag=f"ready{i}-procedure"))
    return out


# -- calendar ----------------------------------------------------------------------

def _week_entries(view: View, week: int) -> tuple[date, list[dict]]:
    payload = view.states.get("calendar") or {}
    # The TV's own Monday: the state may be from last week if the gateway is away.
    monday = view.now.date() - timedelta(days=view.now.weekday()) + timedelta(weeks=week)
    out = []
    for e in payload.get("entries", []):
        try:
            start = as_datetime(e["start"], view.now.tzinfo)
        except ValueError:
            continue
        start = start.astimezone(view.now.tzinfo)
        if monday <= start.date() < monday + timedelta(days=7):
            out.append({**e, "_start": start})
    out.sort(key=lambda e: (e["_start"].date(), not e["all_day"], e["_start"]))
    return monday, out


def _calendar_geometry(size):
    _, body = _title(size, "")
    row_h = px(56, size)
    return body, row_h, max(1, (body[3] - px(34, size)) // row_h)


def calendar_slots(view: View, size) -> list[tuple[int, int]]:
    """(week, page) pairs: this week always (it may say it is empty), next week when it has entries."""
    if view.states.get("calendar") is None:
        return []
    _, _, per = _calendar_geometry(size)
    slots = []
    for week in (0, 1):
        _, entries = _week_entries(view, week)
        if week == 1 and not entries:
            break
        slots += [(week, p) for p in range(max(1, -(-len(entries) // per)))]
    return slots


def _time_text(e: dict, tz) -> str:
    if e["all_day"]:
        return "Cả ngày"
    start = e["_start"]
    text = vietnamese.hhmm(start)
    if e.get("end"):
        try:
            end = as_datetime(e["end"], tz).astimezone(tz)
            if end.date() == start.date():
                text += f"–{vietnamese.hhmm(end)}"
        except ValueError:
            pass
    return text


def calendar_page(view: View, size, week: int = 0, index: int = 0) -> list:
    monday, entries = _week_entries(view, week)
    body, row_h, per = _calendar_geometry(size)
    n = max(1, -(-len(entries) // per))
    sunday = monday + timedelta(days=6)
    title = (f"Lịch công tác {'tuần này' if week == 0 else 'tuần sau'} "
             f"({monday.day:02d}/{monday.month:02d} – {sunday.day:02d}/{sunday.month:02d}/{sunday.year})")
    out, _ = _title(size, title, _page_label(index, n))
    if not entries:
        return out + _message(body, size, "Chưa có lịch công tác tuần này")
    x, y, w, _ = body
    cols = split_h((x, y, w, px(34, size)), [1.6, 1.3, 2.2, 4.6])
    out.append(Box((x, y, w, px(34, size)), NAVY))
    for label, c, key in zip(("Ngày", "Thời gian", "Lãnh đạo", "Nội dung · Địa điểm"), cols, ("day", "time", "leaders", "title")):
        out.append(Text(inset(c, px(8, size), px(3, size)), label, WHITE, px(17, size), bold=True, tag=f"th-{key}"))
    y0 = y + px(34, size)
    previous_day = None
    shown = entries[index * per:(index + 1) * per]
    for i, e in enumerate(shown):
        ry = y0 + i * row_h
        day = e["_start"].date()
        bg = TODAY if day == view.now.date() else (WHITE if (day.toordinal() % 2) else ROW_ALT)
        out.append(Box((x, ry, w, row_h), bg))
        cells = [inset((c[0], ry, c[2], row_h), px(8, size), px(4, size)) for c in cols]
        if day != previous_day or i == 0:
            out.append(Line((x, ry), (x + w, ry), MUTED, 1))
            out.append(Text(cells[0], f"{vietnamese.weekday(day)}\n{day.day:02d}/{day.month:02d}", INK, px(18, size),
                            bold=True, max_lines=2, tag=f"cal{i}-day"))
        previous_day = day
        out.append(Text(cells[1], _time_text(e, view.now.tzinfo), INK, px(19, size), tag=f"cal{i}-time"))
        out.append(Text(cells[2], ", ".join(e.get("leaders") or []) or "—", INK, px(18, size), max_lines=2, tag=f"cal{i}-leaders"))
        what = e["title"] + (f"\n{e['location']}" if e.get("location") else "")
        out.append(Text(cells[3], what, INK, px(19, size), max_lines=2, tag=f"cal{i}-title"))
    return out


# -- announcements ------------------------------------------------------------------

def current_announcements(view: View) -> list[dict]:
    """The text notices shown now (the "announcements" page and the ticker); picture and video ones are slides."""
    payload = view.states.get("announcements") or {}
    return [a for a in payload.get("items", []) if not a.get("media") and _valid(a, view.now)]


def _valid(item: dict, now: datetime) -> bool:
    """In its validity window and on its schedule now."""
    try:
        current = is_current(item, now)
    except ValueError:
        current = True  # an unparsable window is the gateway's to refuse; show rather than hide
    return current and (not item.get("schedule") or is_on(item["schedule"], now))


def announcement_page(view: View, size, index: int = 0) -> list:
    items = current_announcements(view)
    item = items[min(index, len(items) - 1)]
    out, body = _title(size, "Thông báo", _page_label(index, len(items)))
    x, y, w, h = body
    portrait = size[1] > size[0]
    if item.get("qr_url"):
        if portrait:
            text_r, qr_r = split_v(body, [1.4, 1], gap=px(16, size))
        else:
            text_r, qr_r = split_h(body, [1.7, 1], gap=px(24, size))
    else:
        text_r, qr_r = body, None
    title_r, body_r = split_v(text_r, [1, 4], gap=px(10, size))
    out.append(Text(title_r, item["title"], NAVY, px(42, size), bold=True, max_lines=2, valign="top", tag="ann-title"))
    out.append(Text(body_r, item["body"], INK, px(30, size), min_size=px(18, size), max_lines=12, valign="top", tag="ann-body"))
    if qr_r:
        code_r, cap_r = split_v(qr_r, [4, 1], gap=px(8, size))
        out.append(Box(code_r, WHITE, radius=px(8, size)))
        out.append(QR(inset(code_r, px(10, size)), item["qr_url"]))
        out.append(Text(cap_r, f"Quét mã QR để truy cập\n{item['qr_url']}", MUTED, px(18, size), align="center",
                        max_lines=2, valign="top", tag="ann-qr"))
    return out


# -- satisfaction -------------------------------------------------------------------

def _levels(payload: dict) -> list[str]:
    seen = set(payload.get("today", {})) | set(payload.get("month", {}))
    return [lv.code for lv in rating_levels.ALL.values() if lv.code in seen or lv in rating_levels.scale(3)]


def ratings_page(view: View, size) -> list:
    payload = view.states["ratings"]
    out, body = _title(size, "Mức độ hài lòng của người dân")
    portrait = size[1] > size[0]
    big_r, table_r = (split_v(body, [1, 1.6], gap=px(16, size)) if portrait
                      else split_h(body, [1, 1.8], gap=px(30, size)))
    pct = payload.get("satisfied_pct_month")
    month_total = sum(payload.get("month", {}).values())
    n_r, cap_r = split_v(big_r, [2, 1])
    month = f"{view.now.month:02d}/{view.now.year}"
    if pct is None or not month_total:
        out.append(Text(n_r, "—", MUTED, px(110, size), align="center", bold=True, tag="pct"))
        out.append(Text(cap_r, f"Chưa có đánh giá trong tháng {month}", MUTED, px(22, size), align="center",
                        max_lines=2, valign="top", tag="pct-caption"))
    else:
        out.append(Text(n_r, f"{round(pct)}%", GREEN, px(120, size), align="center", bold=True, tag="pct"))
        out.append(Text(cap_r, f"hài lòng trong tháng {month}\n({month_total} lượt đánh giá)", INK, px(22, size),
                        align="center", max_lines=2, valign="top", tag="pct-caption"))
    levels = _levels(payload)
    x, y, w, h = table_r
    row_h = min(px(64, size), h // (len(levels) + 1))
    heads = split_h((x, y, w, row_h), [2.2, 1, 1, 2.4])
    for label, c, key in zip(("Mức độ", "Hôm nay", "Tháng này", ""), heads, ("level", "today", "month", "bar")):
        if label:
            out.append(Text(inset(c, px(6, size), px(6, size)), label, NAVY, px(20, size), bold=True,
                            align="left" if key == "level" else "right", tag=f"th-{key}"))
    most = max([payload.get("month", {}).get(lv, 0) for lv in levels] + [1])
    for i, lv in enumerate(levels):
        ry = y + row_h * (i + 1)
        cells = [inset((c[0], ry, c[2], row_h), px(6, size), px(6, size)) for c in heads]
        # The kiosk's colour for the level (vocab.levels), so a citizen recognises it.
        out.append(Circle((cells[0][0] + px(8, size), ry + row_h // 2), px(8, size), rating_levels.color(lv)))
        label_r = (cells[0][0] + px(24, size), cells[0][1], cells[0][2] - px(24, size), cells[0][3])
        out.append(Text(label_r, rating_levels.label(lv), INK, px(20, size), tag=f"level-{lv}"))
        out.append(Text(cells[1], str(payload.get("today", {}).get(lv, 0)), INK, px(24, size), align="right", bold=True, tag=f"today-{lv}"))
        m = payload.get("month", {}).get(lv, 0)
        out.append(Text(cells[2], str(m), INK, px(24, size), align="right", bold=True, tag=f"month-{lv}"))
        bx, by, bw, bh = cells[3]
        out.append(Box((bx, by + bh // 4, max(1, round(bw * m / most)) if m else 0, bh // 2), rating_levels.color(lv), radius=px(4, size)))
    return out


KPI_TITLES = (("on_time", "Hồ sơ giải quyết đúng hạn", "hồ sơ đến hạn"),
              ("online", "Hồ sơ nộp trực tuyến", "hồ sơ tiếp nhận"),
              ("satisfaction", "Người dân hài lòng", "lượt đánh giá"))


def _pct_vi(share) -> str:
    return "—" if share is None else f"{100 * share:.1f}".replace(".", ",") + "%"


def kpi_page(view: View, size) -> list:
    """The month's three figures (state/kpi): share, a bar with the target line, the counts."""
    payload = view.states["kpi"]
    month = str(payload.get("month", ""))
    label = f"{month[5:7]}/{month[:4]}" if len(month) == 7 else month
    out, body = _title(size, f"Kết quả phục vụ tháng {label}")
    rows = split_v(body, [1, 1, 1], gap=px(18, size))
    for (key, title, unit), r in zip(KPI_TITLES, rows):
        fig = payload.get(key) or {}
        share, target = fig.get("share"), fig.get("target")
        met = share is not None and target is not None and share >= target - 1e-9
        name_r, pct_r, bar_r = split_h(inset(r, px(8, size), px(4, size)), [2.2, 1, 2.4], gap=px(16, size))
        top, bottom = split_v(name_r, [1, 1])
        out.append(Text(top, title, NAVY, px(28, size), bold=True, tag=f"kpi-title-{key}"))
        out.append(Text(bottom, f"{fig.get('part', 0)}/{fig.get('whole', 0)} {unit}", MUTED, px(22, size),
                        tag=f"kpi-counts-{key}"))
        colour = MUTED if share is None else (GREEN if met or target is None else RED)
        out.append(Text(pct_r, _pct_vi(share), colour, px(56, size), bold=True, align="right", tag=f"kpi-pct-{key}"))
        bx, by, bw, bh = bar_r
        bar = (bx, by + bh // 3, bw, bh // 3)
        out.append(Box(bar, ROW_ALT, radius=px(4, size)))
        if share:
            out.append(Box((bx, bar[1], max(1, round(bw * min(1.0, share))), bar[3]), colour, radius=px(4, size)))
        if target is not None:
            tx = bx + round(bw * min(1.0, target)) - px(2, size)
            out.append(Box((max(bx, min(tx, bx + bw - px(4, size))), by + bh // 6, px(4, size), bh * 2 // 3), INK))
            out.append(Text((bx, by + bh * 5 // 6, bw, bh // 6), f"Mục tiêu {_pct_vi(target)}", MUTED, px(16, size),
                            align="right", tag=f"kpi-target-text-{key}"))
    return out


# -- rotation and the whole frame ------------------------------------------------------

# -- picture and video slides -------------------------------------------------------------

def slide_items(view: View) -> list[dict]:
    """The picture and video slides to show now: valid, on their schedule, their file in the cache
    (one still being fetched is skipped, never a blank screen), and not a clip that failed lately."""
    payload = view.states.get("announcements") or {}
    out = []
    for a in payload.get("items", []):
        media = a.get("media")
        if not isinstance(media, dict) or media.get("kind") not in ("image", "video") or not _valid(a, view.now):
            continue
        sha = media.get("sha256")
        if sha not in view.media or (media["kind"] == "video" and sha in view.video_failed):
            continue
        out.append(a)
    return out


def slide(view: View, slide_id: str) -> dict | None:
    for a in (view.states.get("announcements") or {}).get("items", []):
        if a.get("id") == slide_id:
            return a
    return None


def slide_kind(view: View, slot: tuple | None) -> str | None:
    """"image" or "video" for a slides slot, else None."""
    if not slot or slot[0] != "slides":
        return None
    item = slide(view, slot[1])
    return ((item or {}).get("media") or {}).get("kind")


def slide_body_rect(size) -> tuple:
    """Where a picture slide goes: between the header (office name, clock, the stale mark stay) and the ticker."""
    top = header_height(size)
    return (0, top, size[0], size[1] - top - footer_height(size))


def slide_page(view: View, size, slide_id: str) -> list:
    """A picture full width between the header and the ticker, fitted (never cropped: a poster's
    text stays whole); a video's title card (drawn while the player takes over)."""
    item = slide(view, slide_id) or {}
    media = item.get("media") or {}
    r = slide_body_rect(size)
    out = [Box(r, LETTERBOX)]
    path = view.media.get(media.get("sha256"))
    if media.get("kind") == "image" and path:
        out.append(Image(r, str(path), background=LETTERBOX, tag=f"slide-{slide_id}"))
    else:
        out.append(Text(inset(r, px(40, size)), item.get("title") or "", WHITE, px(44, size), align="center",
                        max_lines=3, bold=True, tag="video-title"))
    return out


def slide_seconds(view: View, slot: tuple, slide_s: float) -> float:
    """A slide's time on screen: the clerk's ``seconds``, a clip its length, else ``[signage] slide_s``."""
    item = slide(view, slot[1]) or {}
    media = item.get("media") or {}
    if item.get("seconds"):
        return float(item["seconds"])
    if media.get("kind") == "video" and media.get("duration_s"):
        return float(media["duration_s"])
    return float(slide_s)


def media_wanted(view: View, choose) -> dict[str, dict]:
    """Every slide file the current manifest may show (valid now or later today): original sha256 ->
    ``choose(media)`` ({sha256, size}); the schedule is not checked, so a slide is ready before its hour."""
    out = {}
    for a in (view.states.get("announcements") or {}).get("items", []):
        media = a.get("media")
        if not isinstance(media, dict) or media.get("kind") not in ("image", "video"):
            continue
        try:
            if not is_current(a, view.now) and not _later(a, view.now):
                continue
        except ValueError:
            pass
        out[media["sha256"]] = choose(media)
    return out


def _later(item: dict, now: datetime) -> bool:
    start = item.get("valid_from")
    return bool(start) and datetime.fromisoformat(start) > now


# -- what is shown, for proof of play --------------------------------------------------------

def showing(view: View, slot: tuple | None, screen_on: bool = True) -> tuple | None:
    """What the screen shows, as proof of play counts it: (item_type, item_id, title, media_sha256)
    or None (screen off, nothing). A page's sub-pages are one showing; a text notice on the
    announcements page and a picture or video slide are slides, by their id."""
    if not screen_on:
        return None
    urgent = urgent_items(view)
    if urgent:
        item = urgent[int(view.now.timestamp()) // URGENT_ROTATE_S % len(urgent)]
        return ("urgent", str(item.get("id") or "urgent"), item.get("title"), None)
    if slot is None:
        return ("page", "idle", None, None) if view.states else None
    name = slot[0]
    if name == "slides":
        item = slide(view, slot[1]) or {}
        return ("slide", slot[1], item.get("title"), (item.get("media") or {}).get("sha256"))
    if name == "announcements":
        items = current_announcements(view)
        if items:
            item = items[min(slot[1], len(items) - 1)]
            return ("slide", str(item["id"]), item.get("title"), None)
    return ("page", name, None, None)


# -- page schedules -------------------------------------------------------------------------

def pages_on(entries, now: datetime) -> list[tuple[str, float]]:
    """The pages of ``[signage] pages`` on at ``now`` ((name, seconds, Schedule) entries), in order;
    a page listed twice with different schedules (and seconds) counts once, by its first entry on."""
    out, seen = [], set()
    for name, seconds, schedule in entries:
        if name in seen or (schedule is not None and not schedule.on(now)):
            continue
        seen.add(name)
        out.append((name, seconds))
    return out


def idle_page(view: View, size) -> list:
    """Nothing is on now (every page and slide out of its schedule): the office's name and the clock."""
    w, h = size
    h -= footer_height(size)
    name_r, clock_r, date_r = split_v(inset((0, 0, w, h), px(60, size), px(40, size)), [1.3, 2, 0.8], gap=px(10, size))
    return [Fill(NAVY),
            Text(name_r, view.site_name, WHITE, px(48, size), align="center", bold=True, max_lines=2, tag="idle-site"),
            Text(clock_r, vietnamese.hhmm(view.now), WHITE, px(180, size), align="center", bold=True, tag="clock"),
            Text(date_r, vietnamese.long_date(view.now.date()), WHITE, px(34, size), align="center", tag="date")]


def slots(view: View, size, pages: list[str]) -> list[tuple]:
    """What the rotation goes through now: (page, *args) for every page with something to show."""
    out: list[tuple] = []
    for name in pages:
        if name == "dossiers":
            out += [("dossiers", i) for i in range(dossier_pages(view, size))]
        elif name == "ready":
            out += [("ready", i) for i in range(ready_pages(view, size))]
        elif name == "calendar":
            out += [("calendar", w, i) for w, i in calendar_slots(view, size)]
        elif name == "announcements":
            out += [("announcements", i) for i in range(len(current_announcements(view)))]
        elif name == "slides":
            out += [("slides", a["id"]) for a in slide_items(view)]
        elif name == "ratings" and view.states.get("ratings") is not None:
            out.append(("ratings",))
        elif name == "kpi" and view.states.get("kpi") is not None:
            out.append(("kpi",))
    return out


def body(view: View, size, slot: tuple | None) -> list:
    if slot is None:
        _, b = _title(size, "")
        return _message(b, size, "Chưa có dữ liệu để hiển thị — đang chờ kết nối tới máy chủ của cơ quan")
    name, *args = slot
    if name == "dossiers":
        return dossiers_page(view, size, *args)
    if name == "ready":
        return ready_page(view, size, *args)
    if name == "calendar":
        return calendar_page(view, size, *args)
    if name == "announcements":
        return announcement_page(view, size, *args)
    if name == "ratings":
        return ratings_page(view, size)
    if name == "kpi":
        return kpi_page(view, size)
    if name == "slides":
        return slide_page(view, size, *args)
    raise ValueError(f"unknown page {name!r}")


def frame(view: View, size, slot: tuple | None) -> list:
    """The whole picture above the ticker: background, header, the page; an urgent notice over all of it."""
    if urgent_items(view):
        return urgent_page(view, size)
    if slot is None and view.states:
        return idle_page(view, size)  # data, but nothing on now: never a blank or an error screen
    return [Fill(PAGE)] + header(view, size) + body(view, size, slot)


# -- urgent notice ------------------------------------------------------------------------

URGENT_ROTATE_S = 10  # several notices at once: each this long in turn


def urgent_items(view: View) -> list[dict]:
    """The urgent notices this TV draws now: ``until`` still ahead by its own clock, for every TV or for it."""
    out = []
    for item in (view.states.get("urgent") or {}).get("items", []):
        try:
            until = datetime.fromisoformat(item["until"])
        except (KeyError, TypeError, ValueError):
            continue
        if until.tzinfo is None or until <= view.now:
            continue
        nodes = item.get("nodes")
        if nodes and view.node_id not in nodes:
            continue
        out.append(item)
    return out


def urgent_band_height(size) -> int:
    return px(110, size)


def urgent_page(view: View, size) -> list:
    """Full screen above the ticker: a red band, the title large, the body, "đến HH:MM"."""
    items = urgent_items(view)
    if not items:
        return []
    w, h = size[0], size[1] - footer_height(size)
    pad = px(32, size)
    item = items[int(view.now.timestamp()) // URGENT_ROTATE_S % len(items)]
    band = urgent_band_height(size)
    until = datetime.fromisoformat(item["until"]).astimezone(view.now.tzinfo)
    label_r, clock_r = split_h(inset((0, 0, w, band), pad, px(10, size)), [4, 1], gap=pad)
    out = [Fill(WHITE), Box((0, 0, w, band), RED),
           Text(label_r, "THÔNG BÁO KHẨN", WHITE, px(54, size), bold=True, tag="urgent-label"),
           Text(clock_r, vietnamese.hhmm(view.now), WHITE, px(44, size), align="right", bold=True, tag="clock")]
    inner = (pad, band + pad, w - 2 * pad, h - band - 2 * pad)
    title_r, body_r, until_r = split_v(inner, [3, 5, 1], gap=px(12, size))
    out.append(Text(title_r, item["title"], RED, px(72, size), min_size=px(40, size), bold=True, max_lines=3,
                    align="center", tag="urgent-title"))
    if item.get("body"):
        out.append(Text(body_r, item["body"], INK, px(38, size), min_size=px(24, size), max_lines=10,
                        align="center", valign="top", tag="urgent-body"))
    when = f"đến {vietnamese.hhmm(until)}"
    if until.date() != view.now.date():
        when += f" ngày {until.day:02d}/{until.month:02d}"
    if len(items) > 1:
        when += f" · {items.index(item) + 1}/{len(items)}"
    out.append(Text(until_r, "Thông báo có hiệu lực " + when, MUTED, px(30, size), align="center", tag="urgent-until"))
    return out


def identify_overlay(size, node_id: str) -> list:
    """``identify``: a technician looking for this TV sees its node id, large."""
    w, h = size
    r = (w // 8, h // 4, w * 3 // 4, h // 2)
    return [Box(r, (250, 210, 0), radius=px(16, size)),
            Text(inset(r, px(20, size)), node_id, INK, px(120, size), align="center", bold=True, tag="identify")]


def off_frame() -> list:
    """Outside office hours (and when CEC cannot switch the TV off): black."""
    return [Fill((0, 0, 0))]


# -- ticker -----------------------------------------------------------------------------

def ticker_text(view: View) -> str:
    return "   •   ".join(a["title"] for a in current_announcements(view))


def ticker_step_px(size, speed: float, hz: float) -> float:
    """How far the ticker moves per step: ``speed`` px/s at 1280×720, scaled with the screen."""
    return speed * layout_scale(size) / hz


def ticker_font(size) -> int:
    return px(22, size)


def ticker(text: str, size, offset: int, text_width: int) -> list:
    """The footer strip of a ``size`` screen, in the strip's own coordinates:
    a label, then ``text`` moving left by ``offset`` px.

    ``text_width`` is the text's width at ``ticker_font`` (the caller
    measures it once); the text enters from the right edge.
    """
    w, fh = size[0], footer_height(size)
    label_w = px(150, size)
    out = [Fill(NAVY)]
    if not text:
        return out
    lane = w - label_w
    font = ticker_font(size)
    cycle = text_width + lane
    x = label_w + lane - (offset % cycle)
    out.append(Text((x, 0, text_width + 4, fh), text, WHITE, font, min_size=font, tag="ticker"))
    out.append(Box((0, 0, label_w, fh), (190, 30, 45)))
    out.append(Text(inset((0, 0, label_w, fh), 8, 4), "THÔNG BÁO", WHITE, font, bold=True, align="center", tag="ticker-label"))
    return out
