"""Make a string fit a box: shrink, then wrap, then ellipsis.

Pure apart from the font metrics it is given (``measure(text, size) ->
(width, line_height)``), so it is tested without a screen and the renderer
uses it with pygame's fonts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..vocab.text import printable

ELLIPSIS = "…"
Measure = Callable[[str, int], tuple[int, int]]


def drawable(text) -> str:
    """Any value as text that can be drawn: line breaks kept, every other
    control or format character (a NUL from a bad import or an old cache, a
    bidi override, a lone surrogate) removed, so no text takes a screen down."""
    return "\n".join(printable(part) for part in ("" if text is None else str(text)).split("\n"))


@dataclass(frozen=True)
class Fitted:
    lines: tuple[str, ...]
    size: int
    line_height: int

    @property
    def height(self) -> int:
        return self.line_height * len(self.lines)


def _wrap(text: str, width: int, size: int, measure: Measure) -> list[str]:
    """Greedy word wrap; a word longer than the line is broken by characters."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if measure(candidate, size)[0] <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = word
            while measure(current, size)[0] > width and len(current) > 1:
                # Break an over-long word (a URL, a code) where it must.
                cut = len(current) - 1
                while cut > 1 and measure(current[:cut], size)[0] > width:
                    cut -= 1
                lines.append(current[:cut])
                current = current[cut:]
        lines.append(current)
    return lines


def _ellipsize(line: str, width: int, size: int, measure: Measure) -> str:
    if measure(line, size)[0] <= width and not line.endswith(ELLIPSIS):
        return line
    text = line.rstrip(ELLIPSIS)
    while text and measure(text.rstrip() + ELLIPSIS, size)[0] > width:
        text = text[:-1]
    # Cut between words when that keeps most of the line ("lần…", not "lầ…").
    space = text.rstrip().rfind(" ")
    if space > len(text) * 0.6 and not line[len(text):len(text) + 1].isspace():
        text = text[:space]
    return (text.rstrip() + ELLIPSIS) if text else ""


def _sizes(size: int, min_size: int):
    s = size
    while s > min_size:
        yield s
        s = min(s - 1, int(s * 0.92))
    yield min_size


def fit(text: str, width: int, height: int, size: int, min_size: int, max_lines: int, measure: Measure) -> Fitted:
    """The largest size in [min_size, size] at which ``text`` fits, wrapped onto
    at most ``max_lines`` lines; at ``min_size`` what does not fit is cut with "…".

    A box too low for even one line at ``min_size`` gets a smaller size still
    (down to 6 px): the text stays inside its box whatever the screen.
    """
    text = drawable(text)
    width, height = max(1, width), max(1, height)
    min_size = max(6, min(min_size or int(size * 0.6), size))
    while min_size > 6 and measure("Ág", min_size)[1] > height:
        min_size -= 1
    size = max(size, min_size)
    max_lines = max(1, max_lines)
    for s in _sizes(size, min_size):
        line_height = measure("Ág", s)[1]
        if line_height > height:
            continue
        lines_allowed = min(max_lines, height // line_height)
        if "\n" not in text and measure(text, s)[0] <= width:
            return Fitted((text,), s, line_height)
        if lines_allowed > 1:
            lines = _wrap(text, width, s, measure)
            if len(lines) <= lines_allowed and all(measure(line, s)[0] <= width for line in lines):
                return Fitted(tuple(lines), s, line_height)
    s = min_size
    line_height = measure("Ág", s)[1]
    lines_allowed = max(1, min(max_lines, height // max(1, line_height)))
    lines = _wrap(text, width, s, measure) if lines_allowed > 1 else [" ".join(text.split())]
    kept = lines[:lines_allowed]
    cut = len(lines) > lines_allowed
    kept[-1] = _ellipsize(kept[-1] + (ELLIPSIS if cut else ""), width, s, measure)
    return Fitted(tuple(kept), s, line_height)
