"""Geometry helpers for layout functions: proportional boxes at any resolution."""

from __future__ import annotations

from .instructions import RectT

BASE = (1280, 720)


def scale(size: tuple[int, int]) -> float:
    """1.0 at 1280×720; by the shorter side, so a portrait TV scales like its landscape twin."""
    return min(size) / min(BASE)


def px(value: float, size: tuple[int, int]) -> int:
    """A length designed at 1280×720, at this screen's scale."""
    return max(1, round(value * scale(size)))


def inset(rect: RectT, dx: int, dy: int | None = None) -> RectT:
    dy = dx if dy is None else dy
    x, y, w, h = rect
    return (x + dx, y + dy, max(0, w - 2 * dx), max(0, h - 2 * dy))


def split_h(rect: RectT, fractions: list[float], gap: int = 0) -> list[RectT]:
    """Side by side: widths in proportion to ``fractions``."""
    x, y, w, h = rect
    total = sum(fractions)
    usable = w - gap * (len(fractions) - 1)
    out, cx = [], x
    for i, f in enumerate(fractions):
        cw = round(usable * f / total) if i < len(fractions) - 1 else x + w - cx
        out.append((cx, y, cw, h))
        cx += cw + gap
    return out


def split_v(rect: RectT, fractions: list[float], gap: int = 0) -> list[RectT]:
    """Stacked: heights in proportion to ``fractions``."""
    x, y, w, h = rect
    total = sum(fractions)
    usable = h - gap * (len(fractions) - 1)
    out, cy = [], y
    for i, f in enumerate(fractions):
        ch = round(usable * f / total) if i < len(fractions) - 1 else y + h - cy
        out.append((x, cy, w, ch))
        cy += ch + gap
    return out


def rows(rect: RectT, n: int, gap: int = 0) -> list[RectT]:
    return split_v(rect, [1.0] * n, gap) if n > 0 else []


def contains(outer: RectT, inner: RectT) -> bool:
    ox, oy, ow, oh = outer
    ix, iy, iw, ih = inner
    return ix >= ox and iy >= oy and ix + iw <= ox + ow and iy + ih <= oy + oh


def hit(rect: RectT, point: tuple[int, int]) -> bool:
    x, y, w, h = rect
    return x <= point[0] < x + w and y <= point[1] < y + h
