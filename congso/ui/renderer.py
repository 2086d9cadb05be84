"""Draws a list of instructions on a pygame surface. It only draws.

An unchanged list is not drawn again (``draw`` returns False), and text
surfaces, fonts and QR images are cached, so an idle screen costs almost
nothing and a page change re-renders only the strings that are new.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pygame
import segno

from ..devices.display import find_font
from ..vocab.text import printable
from . import textfit
from .instructions import QR, Arc, Box, Circle, Fill, Image, Instruction, Line, Polygon, RectT, Text

TEXT_CACHE = 1024  # rendered lines kept (a 4K board has a few hundred)
QR_CACHE = 16
IMAGE_CACHE = 3  # decoded, scaled pictures: the one on screen, the next one, one spare (a 4K frame is 33 MB)


@dataclass(frozen=True)
class DrawnText:
    tag: str
    text: str  # what was shown, lines joined with "\n" (may end in "…")
    box: RectT  # the Text's rect
    ink: RectT  # where the rendered lines actually are
    size: int  # the font size used


class Renderer:
    def __init__(self, surface: pygame.Surface, font_path: str | None = None):
        self.surface = surface
        self.font_path = font_path or find_font()
        bold = Path(self.font_path).with_name(Path(self.font_path).stem + "-Bold" + Path(self.font_path).suffix)
        self.bold_path = str(bold) if bold.exists() else None
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        self._lines: OrderedDict[tuple, pygame.Surface] = OrderedDict()
        self._qr: OrderedDict[tuple, pygame.Surface] = OrderedDict()
        self._fits: OrderedDict[tuple, textfit.Fitted] = OrderedDict()
        self._images: OrderedDict[tuple, pygame.Surface | None] = OrderedDict()
        self.image_errors: dict[str, str] = {}  # path -> why it could not be drawn (a damaged file)
        self._last: list[Instruction] | None = None
        self.drawn_text: list[DrawnText] = []
        self.frames = 0  # how many times something was actually drawn

    # -- public -----------------------------------------------------------------
    def force(self) -> None:
        """Draw the next list even if unchanged (after the screen was reopened)."""
        self._last = None

    def draw(self, instructions: list[Instruction]) -> bool:
        if instructions == self._last:
            return False
        if not pygame.font.get_init():
            pygame.font.init()
        drawn: list[DrawnText] = []
        for ins in instructions:
            self._draw_one(ins, drawn)
        self.surface.set_clip(None)
        self._last = list(instructions)
        self.drawn_text = drawn
        self.frames += 1
        return True

    def preload(self, instructions: list[Instruction]) -> int:
        """Decode and scale the pictures of a frame still to come (the next
        slide), so that drawing it later costs a blit; returns how many were new."""
        new = 0
        for ins in instructions:
            if isinstance(ins, Image) and self._image_key(ins) not in self._images:
                self._image(ins)
                new += 1
        return new

    def font(self, size: int, bold: bool = False) -> pygame.font.Font:
        key = (size, bold)
        font = self._fonts.get(key)
        if font is None:
            if not pygame.font.get_init():
                pygame.font.init()
            if bold and self.bold_path:
                font = pygame.font.Font(self.bold_path, size)
            else:
                font = pygame.font.Font(self.font_path, size)
                font.set_bold(bold)
            self._fonts[key] = font
        return font

    def measure(self, text: str, size: int, bold: bool = False) -> tuple[int, int]:
        font = self.font(size, bold)
        text = printable(text)  # measured as it will be drawn (the ticker's width)
        try:
            width = font.size(text)[0]
        except (pygame.error, UnicodeError, ValueError):
            width = font.size(_font_safe(text))[0]
        return width, font.get_height()

    # -- drawing ---------------------------------------------------------------
    def _draw_one(self, ins: Instruction, drawn: list[DrawnText]) -> None:
        s = self.surface
        if isinstance(ins, Fill):
            s.fill(ins.color)
        elif isinstance(ins, Box):
            pygame.draw.rect(s, ins.color, pygame.Rect(ins.rect), ins.width, border_radius=ins.radius)
        elif isinstance(ins, Text):
            drawn.append(self._text(ins))
        elif isinstance(ins, Circle):
            pygame.draw.circle(s, ins.color, ins.center, ins.radius, ins.width)
        elif isinstance(ins, Line):
            pygame.draw.line(s, ins.color, ins.start, ins.end, ins.width)
        elif isinstance(ins, Arc):
            import math

            pygame.draw.arc(s, ins.color, pygame.Rect(ins.rect), math.radians(ins.start_deg), math.radians(ins.stop_deg), ins.width)
        elif isinstance(ins, Polygon):
            pygame.draw.polygon(s, ins.color, ins.points, ins.width)
        elif isinstance(ins, QR):
            self._qr_code(ins)
        elif isinstance(ins, Image):
            self._draw_image(ins)
        else:
            raise TypeError(f"not a drawing instruction: {ins!r}")

    def _fit(self, ins: Text, text: str) -> textfit.Fitted:
        x, y, w, h = ins.rect
        key = (text, w, h, ins.size, ins.min_size, ins.max_lines, ins.bold)
        fitted = self._fits.get(key)
        if fitted is None:
            fitted = textfit.fit(text, w, h, ins.size, ins.min_size, ins.max_lines,
                                 lambda t, size: self.measure(t, size, ins.bold))
            self._fits[key] = fitted
            if len(self._fits) > TEXT_CACHE:
                self._fits.popitem(last=False)
        return fitted

    def _line(self, line: str, size: int, bold: bool, color) -> pygame.Surface:
        key = (line, size, bold, tuple(color))
        surf = self._lines.get(key)
        if surf is None:
            font = self.font(size, bold)
            try:
                surf = font.render(line, True, color)
            except (pygame.error, UnicodeError, ValueError):
                # What this SDL_ttf cannot take (a character above U+FFFF on
                # an old one): drawn as a replacement mark, never a crash.
                surf = font.render(_font_safe(line) or " ", True, color)
            self._lines[key] = surf
            if len(self._lines) > TEXT_CACHE:
                self._lines.popitem(last=False)
        else:
            self._lines.move_to_end(key)
        return surf

    def _text(self, ins: Text) -> DrawnText:
        x, y, w, h = ins.rect
        text = textfit.drawable(ins.text)  # a NUL would make pygame raise ("A null character was found")
        fitted = self._fit(ins, text)
        total = fitted.height
        if ins.valign == "top":
            ty = y
        elif ins.valign == "bottom":
            ty = y + h - total
        else:
            ty = y + (h - total) // 2
        ink: pygame.Rect | None = None
        self.surface.set_clip(pygame.Rect(ins.rect))
        for i, line in enumerate(fitted.lines):
            if not line:
                continue
            surf = self._line(line, fitted.size, ins.bold, ins.color)
            lw = surf.get_width()
            if ins.align == "center":
                lx = x + (w - lw) // 2
            elif ins.align == "right":
                lx = x + w - lw
            else:
                lx = x
            pos = (lx, ty + i * fitted.line_height)
            self.surface.blit(surf, pos)
            r = pygame.Rect(pos, surf.get_size())
            ink = r if ink is None else ink.union(r)
        self.surface.set_clip(None)
        ink_rect = tuple(ink) if ink is not None else (x, y, 0, 0)
        return DrawnText(ins.tag, "\n".join(fitted.lines), ins.rect, ink_rect, fitted.size)

    def _qr_code(self, ins: QR) -> None:
        x, y, w, h = ins.rect
        side = min(w, h)
        key = (ins.data, side, ins.dark, ins.light)
        surf = self._qr.get(key)
        if surf is None:
            try:
                surf = qr_surface(ins.data, side, ins.dark, ins.light)
            except Exception:  # segno refuses data too long for a QR code: no code, the page still shows
                surf = pygame.Surface((1, 1))
                surf.fill(ins.light)
            self._qr[key] = surf
            if len(self._qr) > QR_CACHE:
                self._qr.popitem(last=False)
        self.surface.blit(surf, (x + (w - surf.get_width()) // 2, y + (h - surf.get_height()) // 2))


    # -- pictures ----------------------------------------------------------------
    @staticmethod
    def _image_key(ins: Image) -> tuple:
        return (ins.path, ins.rect[2], ins.rect[3], ins.fit)

    def _image(self, ins: Image) -> pygame.Surface | None:
        key = self._image_key(ins)
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        surf = None
        try:
            surf = scaled_picture(ins.path, ins.rect[2], ins.rect[3], ins.fit)
            self.image_errors.pop(ins.path, None)
        except (pygame.error, OSError, ValueError) as e:  # a damaged file: the box stays its background
            self.image_errors[ins.path] = str(e)
        self._images[key] = surf
        while len(self._images) > IMAGE_CACHE:
            self._images.popitem(last=False)
        return surf

    def _draw_image(self, ins: Image) -> None:
        x, y, w, h = ins.rect
        if ins.background is not None:
            self.surface.fill(ins.background, pygame.Rect(ins.rect))
        surf = self._image(ins)
        if surf is None:
            return
        self.surface.set_clip(pygame.Rect(ins.rect))
        self.surface.blit(surf, (x + (w - surf.get_width()) // 2, y + (h - surf.get_height()) // 2))
        self.surface.set_clip(None)


def scaled_picture(path: str, w: int, h: int, fit: str = "contain") -> pygame.Surface:
    """The picture at ``path`` scaled to fit inside (contain) or cover a ``w`` × ``h`` box, aspect kept."""
    img = pygame.image.load(path)
    iw, ih = img.get_size()
    if iw <= 0 or ih <= 0 or w <= 0 or h <= 0:
        raise ValueError(f"{path}: empty picture or box")
    k = (max if fit == "cover" else min)(w / iw, h / ih)
    size = (max(1, round(iw * k)), max(1, round(ih * k)))
    if pygame.display.get_init() and pygame.display.get_surface() is not None:
        img = img.convert()  # the screen's pixel format: blits at memcpy speed
    if size == (iw, ih):
        return img
    if img.get_bitsize() not in (24, 32):  # a palette PNG: smoothscale takes 24 or 32 bits only
        full = pygame.Surface((iw, ih), 0, 32)
        full.blit(img, (0, 0))
        img = full
    return pygame.transform.smoothscale(img, size)


def _font_safe(text: str) -> str:
    """Printable, and within the Basic Multilingual Plane that every SDL_ttf renders."""
    return "".join(ch if ord(ch) <= 0xFFFF else "\ufffd" for ch in printable(text))


def qr_surface(data: str, side: int, dark=(0, 0, 0), light=(255, 255, 255), border: int = 4) -> pygame.Surface:
    """A QR code at most ``side`` pixels square, whole pixels per module (sharp, scannable)."""
    qr = segno.make(data, error="m")
    rows = [list(row) for row in qr.matrix_iter(border=border)]
    count = len(rows)
    small = pygame.Surface((count, count))
    small.fill(light)
    for r, row in enumerate(rows):
        for c, bit in enumerate(row):
            if bit:
                small.set_at((c, r), dark)
    module = max(1, side // count)
    return pygame.transform.scale(small, (count * module, count * module))
