"""The drawing layer: text always inside its box, Vietnamese intact, idle frames free."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

import pygame
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from congso.ui import QR, Box, Fill, Renderer, Text, layout  # noqa: E402
from congso.vocab import vietnamese  # noqa: E402
from congso.ui import textfit  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "test-out"
LONG = "Cấp giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở và tài sản khác gắn liền với đất lần đầu"


@pytest.fixture(scope="module")
def pg():
    pygame.init()
    yield
    pygame.quit()


def _surface(size):
    return pygame.Surface(size, 0, 32)


@pytest.mark.parametrize("size", [(1280, 720), (3840, 2160), (1080, 1920)])
def test_text_stays_inside_its_box_at_any_resolution(pg, size):
    r = Renderer(_surface(size))
    s = layout.scale(size)
    boxes = [
        Text((10, 10, int(300 * s), int(40 * s)), LONG, (255, 255, 255), int(32 * s), tag="one-line"),
        Text((10, int(60 * s), int(400 * s), int(120 * s)), LONG, (255, 255, 255), int(40 * s), max_lines=3, tag="wrapped"),
        Text((10, int(200 * s), int(60 * s), int(12 * s)), "Nguyễn T. T. H.", (255, 255, 255), int(30 * s), tag="tiny"),
        Text((10, int(240 * s), int(500 * s), int(50 * s)), "https://dichvucong.gov.vn/p/home/dvc-trang-chu.html", (255, 255, 255), int(30 * s), max_lines=1, tag="url"),
    ]
    assert r.draw([Fill((0, 0, 0)), *boxes])
    for d in r.drawn_text:
        assert layout.contains(d.box, d.ink), f"{d.tag}: ink {d.ink} outside {d.box}"
        assert d.text, d.tag
    wrapped = next(d for d in r.drawn_text if d.tag == "wrapped")
    assert 1 <= wrapped.text.count("\n") + 1 <= 3
    OUT.mkdir(exist_ok=True)
    pygame.image.save(r.surface, str(OUT / f"ui-fit-{size[0]}x{size[1]}.png"))


def test_an_unchanged_screen_is_not_drawn_again(pg):
    r = Renderer(_surface((640, 360)))
    frame = [Fill((10, 20, 30)), Box((0, 0, 100, 50), (200, 0, 0)), Text((0, 100, 300, 40), "Hồ sơ", (255, 255, 255), 24)]
    assert r.draw(frame)
    assert not r.draw(list(frame))
    assert r.surface.get_at((50, 25))[:3] == (200, 0, 0)
    r.force()
    assert r.draw(frame)


def test_vietnamese_text_renders_ink_for_every_tone(pg):
    r = Renderer(_surface((800, 100)))
    r.draw([Fill((0, 0, 0)), Text((0, 0, 800, 100), "ắ ằ ẳ ẵ ặ ệ ộ ữ Đ", (255, 255, 255), 40)])
    lit = sum(1 for x in range(0, 800, 2) for y in range(0, 100, 2) if r.surface.get_at((x, y))[0] > 128)
    assert lit > 100


def test_qr_code_is_square_with_dark_finder_patterns(pg):
    r = Renderer(_surface((400, 400)))
    r.draw([Fill((255, 255, 255)), QR((0, 0, 400, 400), "https://dichvucong.gov.vn")])
    # The top-left finder pattern's outer ring starts after the 4-module quiet zone.
    dark = [(x, y) for x in range(0, 120) for y in range(0, 120) if r.surface.get_at((x, y))[0] < 50]
    assert dark, "no finder pattern drawn"
    assert r.surface.get_at((1, 1))[0] > 200  # quiet zone is light


def test_fit_shrinks_then_wraps_then_cuts():
    def measure(text, size):  # a monospace font: 0.6 em per character
        return int(len(text) * size * 0.6), int(size * 1.2)

    assert textfit.fit("abc", 100, 40, 20, 10, 1, measure).lines == ("abc",)
    shrunk = textfit.fit("abcdefghij", 100, 40, 20, 10, 1, measure)
    assert shrunk.size < 20 and shrunk.lines == ("abcdefghij",)
    wrapped = textfit.fit("aaaa bbbb cccc dddd", 100, 100, 20, 18, 3, measure)
    assert len(wrapped.lines) > 1
    cut = textfit.fit("x" * 200, 100, 20, 14, 12, 1, measure)
    assert cut.lines[0].endswith("…") and measure(cut.lines[0], cut.size)[0] <= 100


def test_vietnamese_dates_and_masked_names():
    assert vietnamese.long_date(date(2026, 11, 23)) == "Thứ Hai, 23/11/2026"
    assert vietnamese.long_date(date(2026, 11, 29)) == "Chủ Nhật, 29/11/2026"
    assert vietnamese.hhmm(datetime(2026, 11, 23, 7, 5)) == "07:05"
    assert vietnamese.mask_name("Nguyễn Thị Thu Hà") == "Nguyễn T. T. H."
    assert vietnamese.mask_name("  Lê   văn  an ") == "Lê V. A."
    assert vietnamese.mask_name("Hà") == "H."
    # Decomposed input (NFD from some keyboards) comes out NFC.
    import unicodedata

    assert vietnamese.mask_name(unicodedata.normalize("NFD", "Đặng Ánh")) == "Đặng Á."
