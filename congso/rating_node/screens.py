"""The kiosk's screens: pure functions from a ``View`` to drawing instructions.

Each screen also returns its touch *targets* (rect, action), from the same
geometry that draws the buttons, so ``hit`` maps a touch at a button's
pixels to exactly the button drawn there. Actions: ``level:<i>``,
``reason:<code>``, ``send``, ``back``. A notice (the desk taken or left, a
bad scan) covers the idle screen for a moment and has no targets.

Designed at 1280×720 and scaled by ``ui.layout.px``; a portrait screen
stacks the level buttons instead of lining them up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ui import Box, Fill, Line, Text
from ..ui import layout as L
from ..ui.instructions import Instruction, RectT
from ..vocab.levels import REASONS as REASON_LIST
from . import faces
from .kiosk import ERROR, REASONS, THANKS, View

BG = (244, 246, 250)
INK = (25, 35, 60)
MUTED = (110, 118, 135)
WHITE = (255, 255, 255)
LOCKED = (178, 182, 190)
WARN = (200, 40, 40)
HINT = (190, 110, 0)
FLASH = (255, 200, 0)
SEND = (0, 110, 190)

QUESTION = "Ông/Bà có hài lòng với sự phục vụ của cán bộ?"
PLEASE_WAIT = "Vui lòng chờ giây lát"
THANKS_TEXT = "Cảm ơn Ông/Bà đã đánh giá!"
REASONS_TITLE = "Xin Ông/Bà cho biết lý do chưa hài lòng (có thể chọn nhiều):"
ERROR_TEXT = "Chưa ghi được đánh giá. Xin Ông/Bà vui lòng báo cán bộ."
DUTY_LINE = "Cán bộ tiếp nhận: "
TOOK_DESK = "Đã nhận quầy"
LEFT_DESK = "Đã rời quầy"


@dataclass(frozen=True)
class Screen:
    instructions: list[Instruction]
    targets: list[tuple[RectT, str]] = field(default_factory=list)


def layout(view: View, size: tuple[int, int]) -> Screen:
    draw = {REASONS: reasons, THANKS: thanks, ERROR: error}.get(view.screen, notice if view.notice else idle)
    screen = draw(view, size)
    extra = _footer(view, size) + (_identify(size) if view.identify else [])
    return Screen(screen.instructions + extra, screen.targets)


def hit(screen: Screen, point: tuple[int, int]) -> str | None:
    """The action of the target under ``point`` (the topmost, drawn last), or None."""
    for rect, action in reversed(screen.targets):
        if L.hit(rect, point):
            return action
    return None


def center(screen: Screen, action: str) -> tuple[int, int]:
    """The centre of the target for ``action`` (tests and the bench touch it there)."""
    for (x, y, w, h), a in screen.targets:
        if a == action:
            return (x + w // 2, y + h // 2)
    raise KeyError(f"no target {action!r} on this screen; targets: {[a for _, a in screen.targets]}")


# -- screens -------------------------------------------------------------------

def idle(view: View, size: tuple[int, int]) -> Screen:
    w, h = size
    px = lambda v: L.px(v, size)  # noqa: E731
    margin = px(32)
    body = L.inset((0, 0, w, h - px(56)), margin, margin)
    line, tag = who_line(view)
    head_h = px(190) if line else px(130)
    head, buttons_area = L.split_v(body, [head_h, body[3] - head_h], gap=px(16))
    out: list[Instruction] = [Fill(BG)]
    # One line on a landscape screen (shrunk rather than broken before "bộ?"), two in portrait.
    q_lines, q_min = (2, 0) if h > w else (1, px(32))
    if line:
        q, officer = L.split_v(head, [1.0, 0.8])
        out.append(Text(q, QUESTION, INK, px(50), min_size=q_min, align="center", bold=True, max_lines=q_lines, tag="question"))
        # Portrait: the officer's name and a national dossier code need two lines.
        out.append(Text(officer, line, SEND, px(36), align="center", max_lines=2 if h > w else 1, tag=tag))
    else:
        out.append(Text(head, QUESTION, INK, px(50), min_size=q_min, align="center", bold=True, max_lines=q_lines, tag="question"))
    n = len(view.levels)
    gap = px(24)
    portrait = h > w
    cells = L.rows(buttons_area, n, gap) if portrait else L.split_h(buttons_area, [1.0] * n, gap)
    targets = []
    for i, (level, cell) in enumerate(zip(view.levels, cells)):
        color = LOCKED if view.locked else level.color
        out.append(Box(cell, color, radius=px(28)))
        x, y, cw, ch = cell
        label_h = max(px(70), ch // 4) if not portrait else ch
        if portrait:
            face_box = (x, y, min(ch, cw // 3), ch)
            label_box = (x + face_box[2], y, cw - face_box[2] - px(16), ch)
        else:
            face_box = (x, y, cw, ch - label_h)
            label_box = L.inset((x, y + ch - label_h, cw, label_h), px(10), px(6))
        fx, fy, fw, fh = face_box
        radius = max(10, min(fw, fh) // 2 - px(18))
        out += faces.face((fx + fw // 2, fy + fh // 2 + (px(8) if not portrait else 0)), radius, level.mood, dim=view.locked)
        out.append(Text(label_box, level.label, WHITE, px(40), align="center", bold=True, max_lines=2, tag=f"level:{i}"))
        targets.append((cell, f"level:{i}"))
    if view.locked:
        hint_h = px(70)
        hx, hy, hw, hh = buttons_area
        hint = (hx + hw // 6, hy + (hh - hint_h) // 2, hw * 2 // 3, hint_h)
        out.append(Box(hint, WHITE, radius=px(16)))
        out.append(Box(hint, HINT, radius=px(16), width=px(4)))
        out.append(Text(L.inset(hint, px(12), px(6)), PLEASE_WAIT, HINT, px(38), align="center", bold=True, tag="hint"))
    return Screen(out, targets)


def who_line(view: View) -> tuple[str, str]:
    """The line under the question: whose vote it is and for which dossier ("" when neither)."""
    code = f"Hồ sơ: {view.dossier_code}" if view.dossier_code else ""
    if view.officer_name:        # a desk session, for its one vote
        who = f"Cán bộ phục vụ: {view.officer_name}"
    elif view.duty_name:         # the officer holding the desk (card tap or console)
        who = f"{DUTY_LINE}{view.duty_name}"
    else:
        return code, "dossier"
    return (f"{who}  ·  {code}" if code else who), "officer"


def notice(view: View, size: tuple[int, int]) -> Screen:
    """A short message over the idle screen: the desk taken or left, a bad scan. No targets: nothing to press."""
    w, h = size
    px = lambda v: L.px(v, size)  # noqa: E731
    color = WARN if view.notice_kind == "warn" else SEND
    box = L.inset((0, 0, w, h - px(56)), px(80), px(120))
    out: list[Instruction] = [Fill(BG), Box(box, color, radius=px(32))]
    inner = L.inset(box, px(40), px(30))
    if view.notice_detail:
        title, detail = L.split_v(inner, [1.3, 1.0], gap=px(10))
        out.append(Text(title, view.notice, WHITE, px(64), align="center", bold=True, max_lines=2, tag="notice"))
        out.append(Text(detail, view.notice_detail, WHITE, px(44), align="center", max_lines=2, tag="notice_detail"))
    else:
        out.append(Text(inner, view.notice, WHITE, px(64), align="center", bold=True, max_lines=2, tag="notice"))
    return Screen(out)


def reasons(view: View, size: tuple[int, int]) -> Screen:
    w, h = size
    px = lambda v: L.px(v, size)  # noqa: E731
    body = L.inset((0, 0, w, h - px(56)), px(28), px(20))
    title, grid, bar = L.split_v(body, [px(80), body[3] - px(80) - px(110), px(110)], gap=px(12))
    out: list[Instruction] = [Fill(BG)]
    chosen = view.levels[view.chosen] if view.chosen is not None else None
    out.append(Text(title, REASONS_TITLE, INK, px(38), align="center", bold=True, max_lines=2, tag="title"))
    cols = 1 if h > w else 2
    per_col = -(-len(REASON_LIST) // cols)
    columns = L.split_h(grid, [1.0] * cols, gap=px(20))
    targets = []
    for c, col in enumerate(columns):
        for r, cell in enumerate(L.rows(col, per_col, gap=px(12))):
            k = c * per_col + r
            if k >= len(REASON_LIST):
                break
            code, label = REASON_LIST[k]
            on = code in view.ticked
            out.append(Box(cell, (255, 236, 236) if on else WHITE, radius=px(14)))
            out.append(Box(cell, WARN if on else LOCKED, radius=px(14), width=px(4 if on else 2)))
            x, y, cw, ch = cell
            side = min(ch - px(20), px(48))
            box = (x + px(16), y + (ch - side) // 2, side, side)
            out.append(Box(box, WARN if on else MUTED, radius=px(6), width=0 if on else px(3)))
            if on:  # a tick mark drawn with two strokes
                bx, by, bs, _ = box
                out.append(Line((bx + bs // 5, by + bs // 2), (bx + bs * 2 // 5, by + bs * 3 // 4), WHITE, px(6)))
                out.append(Line((bx + bs * 2 // 5, by + bs * 3 // 4), (bx + bs * 4 // 5, by + bs // 4), WHITE, px(6)))
            text_box = (box[0] + side + px(16), y + px(4), cw - side - px(48), ch - px(8))
            out.append(Text(text_box, label, INK, px(30), max_lines=2, tag=f"reason:{code}"))
            targets.append((cell, f"reason:{code}"))
    back, info, send = L.split_h(bar, [1.0, 1.4, 1.0], gap=px(20))
    out.append(Box(back, LOCKED, radius=px(20)))
    out.append(Text(L.inset(back, px(12), px(8)), "← Chọn lại", INK, px(36), align="center", tag="back"))
    targets.append((back, "back"))
    if view.reasons_left_s is not None:
        note = f"Tự động gửi sau {view.reasons_left_s} giây"
        if chosen:
            note = f"{chosen.label} · {note}"
        out.append(Text(info, note, MUTED, px(28), align="center", max_lines=2, tag="countdown"))
    out.append(Box(send, SEND, radius=px(20)))
    out.append(Text(L.inset(send, px(12), px(8)), "Gửi", WHITE, px(48), align="center", bold=True, tag="send"))
    targets.append((send, "send"))
    return Screen(out, targets)


def thanks(view: View, size: tuple[int, int]) -> Screen:
    w, h = size
    px = lambda v: L.px(v, size)  # noqa: E731
    level = view.levels[view.chosen] if view.chosen is not None else None
    out: list[Instruction] = [Fill(level.color if level else SEND)]
    top, bottom = L.split_v(L.inset((0, 0, w, h - px(56)), px(40), px(30)), [1.3, 1.0], gap=px(20))
    if level:
        tx, ty, tw, th = top
        out += faces.face((tx + tw // 2, ty + th // 2), min(tw, th) // 2 - px(10), level.mood)
    out.append(Text(bottom, THANKS_TEXT, WHITE, px(64), align="center", bold=True, max_lines=2, tag="thanks"))
    return Screen(out)


def error(view: View, size: tuple[int, int]) -> Screen:
    w, h = size
    px = lambda v: L.px(v, size)  # noqa: E731
    box = L.inset((0, 0, w, h - px(56)), px(60), px(60))
    return Screen([Fill(WARN), Text(box, ERROR_TEXT, WHITE, px(56), align="center", bold=True, max_lines=3, tag="error")])


# -- parts -----------------------------------------------------------------------

def _footer(view: View, size: tuple[int, int]) -> list[Instruction]:
    w, h = size
    px = lambda v: L.px(v, size)  # noqa: E731
    bar = (0, h - px(56), w, px(56))
    left, right = L.split_h(L.inset(bar, px(24), px(4)), [1.0, 1.6] if w >= h else [1.0, 2.6])
    dark = view.screen in (THANKS, ERROR)
    color = WHITE if dark else MUTED
    out: list[Instruction] = [Text(left, view.desk_name or f"Quầy {view.desk_id}", color, px(24), tag="desk")]
    notes = []
    if not view.clock_synced:
        notes.append("Đồng hồ chưa đồng bộ")
    if not view.online:
        notes.append("Mất kết nối, đánh giá vẫn được lưu")
    if notes:
        out.append(Text(right, " · ".join(notes), WHITE if dark else WARN, px(24), align="right",
                        max_lines=2, tag="status"))
    return out


def _identify(size: tuple[int, int]) -> list[Instruction]:
    w, h = size
    return [Box((0, 0, w, h), FLASH, width=L.px(28, size))]
