"""Drawing instructions: what a layout function returns and the renderer draws.

Plain frozen dataclasses, so a layout is a pure function of the state, two
frames compare with ``==`` (an unchanged screen is not redrawn) and tests
read a screen's content without rendering it.
"""

from __future__ import annotations

from dataclasses import dataclass

Color = tuple[int, int, int]
RectT = tuple[int, int, int, int]  # x, y, width, height
Point = tuple[int, int]


@dataclass(frozen=True)
class Fill:
    """The whole screen in one colour (usually the first instruction)."""

    color: Color


@dataclass(frozen=True)
class Box:
    rect: RectT
    color: Color
    radius: int = 0
    width: int = 0  # 0: filled; otherwise the outline's thickness


@dataclass(frozen=True)
class Text:
    """Text fitted inside ``rect``: shrunk down to ``min_size``, then wrapped
    onto at most ``max_lines`` lines, then cut with an ellipsis. Never drawn
    outside ``rect``. ``tag`` names it for tests (``Renderer.drawn_text``)."""

    rect: RectT
    text: str
    color: Color
    size: int
    min_size: int = 0  # 0: 60 % of size
    align: str = "left"  # left | center | right
    valign: str = "middle"  # top | middle | bottom
    bold: bool = False
    max_lines: int = 1
    tag: str = ""


@dataclass(frozen=True)
class Circle:
    center: Point
    radius: int
    color: Color
    width: int = 0


@dataclass(frozen=True)
class Line:
    start: Point
    end: Point
    color: Color
    width: int = 1


@dataclass(frozen=True)
class Arc:
    """pygame.draw.arc: angles in degrees, anticlockwise from 3 o'clock."""

    rect: RectT
    start_deg: float
    stop_deg: float
    color: Color
    width: int = 2


@dataclass(frozen=True)
class Polygon:
    points: tuple[Point, ...]
    color: Color
    width: int = 0


@dataclass(frozen=True)
class QR:
    """A QR code (segno) for ``data``, square, with its quiet zone, centred in ``rect``."""

    rect: RectT
    data: str
    dark: Color = (0, 0, 0)
    light: Color = (255, 255, 255)


@dataclass(frozen=True)
class Image:
    """A picture file (a cached slide, named by its SHA-256) scaled to fit
    inside ``rect`` keeping its aspect (``fit="contain"``, centred on
    ``background``) or to fill it, cropped (``fit="cover"``). The layout only
    names the file: the renderer decodes and scales it (and keeps a few)."""

    rect: RectT
    path: str
    fit: str = "contain"  # contain | cover
    background: Color | None = (0, 0, 0)
    tag: str = ""


Instruction = Fill | Box | Text | Circle | Line | Arc | Polygon | QR | Image


def texts(instructions: list[Instruction]) -> list[Text]:
    """The Text instructions of a layout, for tests and the screen reader of a log."""
    return [i for i in instructions if isinstance(i, Text)]
