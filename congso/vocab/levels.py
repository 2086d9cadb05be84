"""The rating scales and the reasons a citizen can give: pure data.

Shared by the kiosk (what to draw, what to send), the TV's ratings page
and the gateway (report columns and labels): one label and one colour per
level, so the kiosk and the TV show each level alike.

Scales: 3 levels by default, the one Vietnamese offices report
(Rất hài lòng / Hài lòng / Không hài lòng); 4 or 5 by ``[rating] levels``.
Levels are listed best first: that is also the order of the GPIO buttons
and of the buttons on the screen (left to right).

Reasons: asked only after a "dissatisfied" or "very_dissatisfied" vote. The
codes follow the points on which the one-stop service is assessed
(Decree 61/2018/NĐ-CP on the one-stop mechanism, its Circular
01/2018/TT-VPCP, and the satisfaction index of Decision 2640/QĐ-BNV):
time taken, the number of visits and supplements, the officer's attitude,
publicity of the procedure, guidance, fees, the result, and "other".
"""

from __future__ import annotations

from dataclasses import dataclass

# The wire values, best first: the contract's list (protocol.messages.RATING_LEVELS;
# a test keeps the two equal, vocab imports nothing outside itself).
CODES = ("very_satisfied", "satisfied", "neutral", "dissatisfied", "very_dissatisfied")


@dataclass(frozen=True)
class Level:
    code: str          # the wire value (CODES)
    label: str         # Vietnamese, shown under the face, on the TV and in reports
    color: tuple[int, int, int]  # the kiosk's button and face, the TV's dot and bar
    mood: float        # +1 broad smile ... -1 deep frown: drives the drawn face


VERY_SATISFIED = Level("very_satisfied", "Rất hài lòng", (46, 160, 67), 1.0)
SATISFIED = Level("satisfied", "Hài lòng", (0, 137, 150), 0.5)
NEUTRAL = Level("neutral", "Bình thường", (230, 160, 0), 0.0)
DISSATISFIED = Level("dissatisfied", "Không hài lòng", (214, 48, 49), -0.6)
VERY_DISSATISFIED = Level("very_dissatisfied", "Rất không hài lòng", (150, 20, 30), -1.0)

ALL = {lv.code: lv for lv in (VERY_SATISFIED, SATISFIED, NEUTRAL, DISSATISFIED, VERY_DISSATISFIED)}
assert tuple(ALL) == CODES

SCALES: dict[int, tuple[Level, ...]] = {
    3: (VERY_SATISFIED, SATISFIED, DISSATISFIED),
    4: (VERY_SATISFIED, SATISFIED, DISSATISFIED, VERY_DISSATISFIED),
    5: (VERY_SATISFIED, SATISFIED, NEUTRAL, DISSATISFIED, VERY_DISSATISFIED),
}

# Counted as "satisfied" in the percentage every report and the TV show.
SATISFIED_CODES = frozenset({"very_satisfied", "satisfied"})
# After these the kiosk asks why.
UNSATISFIED_CODES = frozenset({"dissatisfied", "very_dissatisfied"})

REASONS: tuple[tuple[str, str], ...] = (
    ("thoi_gian", "Thời gian giải quyết quá hạn, kéo dài"),
    ("so_lan_di_lai", "Phải đi lại, bổ sung hồ sơ nhiều lần"),
    ("thai_do", "Thái độ của cán bộ chưa tốt"),
    ("cong_khai", "Thủ tục chưa được công khai, minh bạch"),
    ("huong_dan", "Hướng dẫn chưa rõ ràng, đầy đủ"),
    ("phi", "Thu phí, lệ phí không đúng quy định"),
    ("ket_qua", "Kết quả giải quyết chưa đúng, chưa đầy đủ"),
    ("khac", "Lý do khác"),
)
REASON_LABELS = dict(REASONS)


class ScaleError(ValueError):
    """A ``[rating] levels`` value that is not 3, 4 or 5."""


def scale(n: int) -> tuple[Level, ...]:
    """The levels of an ``n``-level scale, best first."""
    try:
        return SCALES[int(n)]
    except (KeyError, ValueError, TypeError):
        raise ScaleError(f"[rating] levels must be 3, 4 or 5, got {n!r}") from None


def label(code: str) -> str:
    return ALL[code].label if code in ALL else code


UNKNOWN_COLOR = (160, 160, 160)


def color(code: str) -> tuple[int, int, int]:
    """The level's one colour (grey for a code this version does not know)."""
    return ALL[code].color if code in ALL else UNKNOWN_COLOR


def satisfied_pct(counts: dict[str, int]) -> float | None:
    """(very satisfied + satisfied) / all votes, in percent to one decimal; None with no votes."""
    total = sum(counts.values())
    if not total:
        return None
    return round(100.0 * sum(n for code, n in counts.items() if code in SATISFIED_CODES) / total, 1)
