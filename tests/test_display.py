"""The signage display on SDL's dummy driver: real pygame, real fonts, pixels read back.

Screenshots to look at land in test-out/ at the repository root.
"""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"  # before pygame initialises anything
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import io  # noqa: E402
import subprocess  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
import unicodedata  # noqa: E402
from pathlib import Path  # noqa: E402

import pygame  # noqa: E402
import pygame.freetype  # noqa: E402
import pytest  # noqa: E402

from congso.devices import display as disp  # noqa: E402
from congso.protocol import settings as settings_mod  # noqa: E402
from font_helpers import latin_only_font  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "test-out"
LATIN_ONLY = latin_only_font()  # no ư, ơ, ắ ...
WHITE, RED, BLUE, BLACK = (255, 255, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)


def make_settings(**display_values):
    values = {"width": 1280, "height": 720}
    values.update(display_values)
    return settings_mod.load(environ={}).with_overrides(display=values)


@pytest.fixture
def display():
    d = disp.Display.open(make_settings().display)
    yield d
    d.close()


def ink(surface, rect=None, color=WHITE):
    """Pixels of ``color`` (within a tolerance that takes antialiasing's lighter half)."""
    area = surface.subsurface(rect) if rect else surface
    return pygame.mask.from_threshold(area, color, (128, 128, 128, 255))


# tobytes is pygame 2.1.3's name; Debian 12's python3-pygame (2.1.2, the Pi's) has tostring.
_tobytes = getattr(pygame.image, "tobytes", None) or pygame.image.tostring


def same_pixels(a, b):
    return a.get_size() == b.get_size() and _tobytes(a, "RGBA") == _tobytes(b, "RGBA")


# -- fonts -------------------------------------------------------------------

def test_sample_is_every_letter_with_every_tone():
    vowels = ["a", "a\u0306", "a\u0302", "e", "e\u0302", "i", "o", "o\u0302", "o\u031b", "u", "u\u031b", "y"]
    tones = ["", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323"]  # huyền sắc hỏi ngã nặng
    expected = {unicodedata.normalize("NFC", v + t) for v in vowels for t in tones}
    expected |= {c.upper() for c in expected} | {"đ", "Đ"}
    assert all(len(c) == 1 for c in expected)  # every one has a precomposed code point
    assert expected <= set(disp.VIETNAMESE_SAMPLE)
    assert len(expected) == 12 * 6 * 2 + 2


def test_find_font_finds_dejavu_and_it_covers_vietnamese():
    path = disp.find_font()
    assert os.path.basename(path) == "DejaVuSans.ttf"
    assert disp.font_covers_vietnamese(path) == (True, "")


def test_font_without_vietnamese_is_reported_with_the_missing_letters(caplog):
    ok, missing = disp.font_covers_vietnamese(LATIN_ONLY)
    assert not ok
    assert {"ư", "ơ", "ắ", "ệ", "Ự"} <= set(missing)
    assert "a" not in missing and "đ" not in missing  # it has those
    # A code point no font here has: private use U+E000.
    assert disp._missing_glyphs(disp.find_font(), "a\ue000") == (False, "\ue000")
    # The preferred font is refused, with a warning, for one that covers.
    with caplog.at_level(logging.WARNING, logger="congso.devices.display"):
        assert os.path.basename(disp.find_font(LATIN_ONLY)) == "DejaVuSans.ttf"
    assert "latin-only.ttf refused" in caplog.text


def test_no_covering_font_is_a_clear_error(tmp_path, monkeypatch):
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / "latin-only.ttf").write_bytes(Path(LATIN_ONLY).read_bytes())
    (fonts / "broken.ttf").write_bytes(b"not a font")
    monkeypatch.setattr(disp, "FONT_DIRS", (str(fonts),))
    monkeypatch.setenv("PATH", str(tmp_path))  # no fc-match
    with pytest.raises(disp.FontError) as e:
        disp.find_font(str(tmp_path / "gone.ttf"))
    message = str(e.value)
    assert "gone.ttf: no such file" in message
    assert "latin-only.ttf: no glyph for" in message
    assert "broken.ttf: " in message and "not a readable font" in message
    assert "apt install fonts-dejavu-core" in message


def test_every_letter_draws_its_own_glyph_not_the_missing_glyph_box(display):
    """What the coverage check guards against: the .notdef box ("tofu") in place of a letter."""
    font = display.font(32)
    tofu = font.render("\ue000", True, WHITE)  # DejaVu has no U+E000: its .notdef box
    drawn = [c for c in disp.VIETNAMESE_SAMPLE if same_pixels(font.render(c, True, WHITE), tofu)]
    assert drawn == []
    # The same check on a font lacking them finds the box in place of "ắ".
    bare = pygame.font.Font(LATIN_ONLY, 32)
    assert same_pixels(bare.render("ắ", True, WHITE), bare.render("\ue000", True, WHITE))


# -- text --------------------------------------------------------------------

def test_vietnamese_text_renders_with_its_marks(display):
    surface = display.surface
    rect = display.draw_text("Thứ Hai, 23/11/2026", (40, 40), 64)
    plain = display.draw_text("Thu Hai, 23/11/2026", (40, 200), 64)
    assert ink(surface, rect).count() > 500
    # The horn and the acute on "ứ" are ink that "u" has not.
    assert ink(surface, rect).count() > ink(surface, plain).count() + 50
    # "Ệ" reaches above and below "E": circumflex on top, dot below.
    e = display.draw_text("E", (40, 400), 96)
    e_marked = display.draw_text("Ệ", (200, 400), 96)
    top_e, bottom_e = _ink_rows(surface, e)
    top_m, bottom_m = _ink_rows(surface, e_marked)
    assert top_m < top_e - 5 and bottom_m > bottom_e + 5
    display.draw_text("Ủy ban nhân dân xã Kỳ Châu", (40, 560), 48, color=(255, 220, 0))
    display.present()
    OUT.mkdir(exist_ok=True)
    display.save_screenshot(OUT / "display-vietnamese.png")


def _ink_rows(surface, rect):
    """Screen rows of the first and last inked line inside rect."""
    boxes = ink(surface, rect).get_bounding_rects()
    return rect.top + min(b.top for b in boxes), rect.top + max(b.bottom for b in boxes)


def test_decomposed_text_draws_like_composed(display):
    composed = "Nguyễn Văn Ả, Thứ Hai, Đồng Khởi"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed and disp.nfc(decomposed) == composed
    assert same_pixels(display.render_text(decomposed, 40), display.render_text(composed, 40))
    # Why nfc() runs first: a renderer without HarfBuzz (pygame.freetype here)
    # draws the decomposed marks as glyphs of their own, in other places.
    ft = pygame.freetype.Font(disp.find_font(), 40)
    assert not same_pixels(ft.render(decomposed, WHITE, BLACK)[0], ft.render(composed, WHITE, BLACK)[0])


# -- screen ------------------------------------------------------------------

@pytest.mark.parametrize("rotation, top_left, bottom_left", [
    (0, (0, 0), (0, 719)),
    (90, (1279, 0), (0, 0)),
    (180, (1279, 719), (1279, 0)),
    (270, (0, 719), (1279, 719)),
])
def test_rotation_turns_the_picture_onto_the_screen(rotation, top_left, bottom_left):
    with disp.Display.open(make_settings(rotation=rotation).display) as d:
        assert d.driver == "dummy" and d.status == "ok"
        w, h = d.size
        assert d.size == ((720, 1280) if rotation in (90, 270) else (1280, 720))
        d.surface.fill(BLACK)
        d.surface.fill(RED, (0, 0, 40, 40))          # logical top-left
        d.surface.fill(BLUE, (0, h - 40, 40, 40))    # logical bottom-left
        d.present()
        screen = pygame.display.get_surface()
        assert screen.get_size() == (1280, 720)
        assert screen.get_at(_inward(top_left))[:3] == RED
        assert screen.get_at(_inward(bottom_left))[:3] == BLUE
        assert screen.get_at((640, 360))[:3] == BLACK
        if rotation == 90:
            d.draw_text("Lịch tiếp công dân", (360, 200), 56, anchor="center")
            d.present()
            OUT.mkdir(exist_ok=True)
            pygame.image.save(screen, OUT / "display-rotation-90-screen.png")


def _inward(corner):
    """A pixel 10 px inside the screen from the given corner."""
    x, y = corner
    return (x + 10 if x == 0 else x - 10, y + 10 if y == 0 else y - 10)


def test_display_loss_recovers_on_next_present(display, caplog):
    display.surface.fill(RED)
    display.present()
    assert pygame.display.get_surface().get_at((5, 5))[:3] == RED
    pygame.display.quit()  # the TV went away underneath
    display.surface.fill(BLUE)
    with caplog.at_level(logging.INFO, logger="congso.devices.display"):
        display.present()  # must not raise
    assert display.status == "ok"
    assert pygame.display.get_surface().get_at((5, 5))[:3] == BLUE
    assert "lost" in caplog.text and "back on dummy" in caplog.text


def test_reopen_failures_back_off_and_never_raise(monkeypatch):
    monkeypatch.setattr(disp.Display, "REOPEN_MIN_S", 0.2)
    with disp.Display.open(make_settings().display) as d:
        d.present()
        pygame.display.quit()
        monkeypatch.setenv("SDL_VIDEODRIVER", "no-such-driver")  # reopening cannot work
        d.present()
        assert d.status == "error"
        d.present()
        assert d.status == "error"
        monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # the screen is back...
        d.present()
        assert d.status == "error"  # ... but the next try waits for the backoff
        time.sleep(0.25)  # the next try comes REOPEN_MIN_S after the failure
        d.present()
        assert d.status == "ok" and pygame.display.get_init()


def test_automatic_choice_falls_back_to_dummy_and_says_so(monkeypatch, caplog):
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(disp.Display, "REOPEN_MIN_S", 0.05)
    with caplog.at_level(logging.WARNING, logger="congso.devices.display"):
        with disp.Display.open(make_settings().display) as d:
            assert d.driver == "dummy"
            assert d.status == "missing"  # nothing visible: the health heartbeat says so
            assert list(d.tried) == ["kmsdrm"]  # SDL 2 has no fbcon
            assert d.size == (1280, 720)
            for _ in range(3):  # looks for a real screen again, without raising or re-warning
                time.sleep(0.06)
                d.present()
            assert d.status == "missing"
    assert caplog.text.count("nothing will be visible") == 1
    assert "SDL_VIDEODRIVER" not in os.environ  # tried drivers were not left behind


def test_driver_from_settings_and_environment(monkeypatch):
    monkeypatch.delenv("SDL_VIDEODRIVER")
    with disp.Display.open(make_settings(driver="offscreen").display) as d:
        assert (d.driver, d.status) == ("offscreen", "ok")
    with pytest.raises(disp.DisplayError, match="no-such-driver"):
        disp.Display.open(make_settings(driver="no-such-driver").display)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # the environment wins
    with disp.Display.open(make_settings(driver="offscreen").display) as d:
        assert d.driver == "dummy"
    with pytest.raises(ValueError, match="rotation"):
        disp.Display(make_settings(rotation=45).display)


def test_screenshot_png(display):
    display.surface.fill((10, 40, 90))
    display.draw_text("Số thứ tự: 042", (640, 360), 120, anchor="center")
    png = display.screenshot_png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert pygame.image.load(io.BytesIO(png)).get_size() == (1280, 720)
    small = pygame.image.load(io.BytesIO(display.screenshot_png(max_width=320)))
    assert small.get_size() == (320, 180)
    assert small.get_at((5, 5))[:3] == (10, 40, 90)
    assert display.screenshot_png(max_width=5000) == png  # never scaled up
    OUT.mkdir(exist_ok=True)
    display.save_screenshot(OUT / "display-screenshot-small.png", max_width=320)


def test_check(monkeypatch):
    results = {r.name: r for r in disp.check(make_settings(rotation=90))}
    assert results["display"].ok and results["display"].detail.startswith("dummy 1280x720")
    assert "drawn as 720x1280" in results["display"].detail
    assert results["display font"].ok and "DejaVuSans.ttf" in results["display font"].detail
    monkeypatch.delenv("SDL_VIDEODRIVER")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    auto = {r.name: r for r in disp.check(make_settings())}
    assert not auto["display"].ok and "nothing visible" in auto["display"].detail
    # The fix depends on whether this SDL has kmsdrm at all (pip's wheel has not).
    compiled = disp.compiled_video_drivers()
    assert "dummy" in compiled
    if disp.has_driver(compiled, "kmsdrm"):
        assert auto["display"].fix.startswith(disp.KMSDRM_FIX)
    else:
        assert auto["display"].fix == disp.NO_KMSDRM_FIX


# -- which drivers are tried, against the SDL of a Pi ------------------------------

# What SDL_GetVideoDriver lists on Debian 12 / Raspberry Pi OS (libsdl2 2.26)
# and in pygame's pip wheel: SDL names its KMS/DRM driver in capitals.
DEBIAN_SDL = ("x11", "wayland", "KMSDRM", "offscreen", "dummy", "evdev")
WHEEL_SDL = ("x11", "wayland", "offscreen", "dummy", "evdev")


def test_kmsdrm_is_tried_first_on_an_sdl_that_reports_it_in_capitals(monkeypatch):
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    drivers, explicit = disp._choice("")
    assert drivers[0] == "kmsdrm" and drivers[-1] == "dummy" and "fbcon" not in drivers
    tried, skipped = disp.plan(drivers, explicit, DEBIAN_SDL)
    assert tried[0] == "kmsdrm" and skipped == {}
    tried, skipped = disp.plan(drivers, explicit, WHEEL_SDL)
    assert "kmsdrm" not in tried and skipped == {"kmsdrm": "not built into this SDL"}
    assert disp._display_fix(DEBIAN_SDL) == disp.KMSDRM_FIX
    assert disp._display_fix(WHEEL_SDL) == disp.NO_KMSDRM_FIX
    assert "python3-pygame" in disp.NO_KMSDRM_FIX and "/opt/congso/venv" in disp.NO_KMSDRM_FIX


def test_a_driver_sdl2_lacks_is_named_with_what_to_set(monkeypatch):
    monkeypatch.delenv("SDL_VIDEODRIVER")
    with pytest.raises(disp.DisplayError) as raised:
        disp.Display.open(make_settings(driver="fbcon").display)
    message = str(raised.value)
    assert "fbcon" in message and "this SDL has only" in message and "kmsdrm on a Pi" in message


DEBIAN_PYGAME = "/usr/bin/python3"


def _debian_pygame() -> bool:
    probe = subprocess.run([DEBIAN_PYGAME, "-c", "import pygame"], capture_output=True) if os.path.exists(DEBIAN_PYGAME) else None
    return bool(probe) and probe.returncode == 0


@pytest.mark.skipif(not _debian_pygame(), reason="Debian's python3-pygame is not installed (the Makefile installs it)")
def test_debian_pygame_tries_kmsdrm_for_real():
    """Debian's pygame on Debian's SDL, as the installer sets up a TV: the
    automatic choice really asks SDL for KMSDRM (no screen here, so SDL
    refuses and the node falls back to dummy, saying why)."""
    code = (
        "import os, sys; [os.environ.pop(k, None) for k in ('SDL_VIDEODRIVER', 'DISPLAY', 'WAYLAND_DISPLAY')]\n"
        "from congso.devices import display as disp\n"
        "compiled = disp.compiled_video_drivers()\n"
        "class S: driver = ''; width = 640; height = 360; rotation = 0; font = ''\n"
        "d = disp.Display.open(S())\n"
        "print(compiled); print(d.driver, d.status); print(d.tried)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDL_")}
    env["PYTHONPATH"] = str(Path(disp.__file__).resolve().parents[2])
    result = subprocess.run([DEBIAN_PYGAME, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    compiled, chosen, tried = result.stdout.strip().splitlines()[-3:]
    assert "KMSDRM" in compiled
    assert chosen == "dummy missing"
    assert "kmsdrm" in tried and "not built into this SDL" not in tried


def test_a_4k_tv_is_drawn_at_1080p_on_a_pi_3_or_4_and_natively_on_a_pi_5():
    uhd, portrait = (3840, 2160), (2160, 3840)
    assert disp.render_size("Raspberry Pi 4 Model B Rev 1.5", uhd) == (1920, 1080)
    assert disp.render_size("Raspberry Pi 3 Model B Plus Rev 1.3", portrait) == (1080, 1920)
    assert disp.render_size("Raspberry Pi 4 Model B Rev 1.5", (1920, 1080)) == (0, 0)  # already 1080p
    assert disp.render_size("Raspberry Pi 5 Model B Rev 1.0", uhd) == (0, 0)  # the Pi 5 draws 4K
    assert disp.render_size("", uhd) == (0, 0)  # not a Pi: the screen's own


def test_presenting_only_the_changed_strip_leaves_the_whole_screen_equal_to_the_picture(display):
    """The TV presents only its ticker strip when only that moved: the screen must still show
    the whole picture (the rest from the last full present), never a stale or blank part."""
    w, h = display.size
    display.surface.fill(BLUE)
    display.present()
    strip = (0, h - 60, w, 60)
    display.surface.fill(RED, strip)
    display.present(strip)
    screen = pygame.display.get_surface()
    assert same_pixels(screen, display.surface)
    assert screen.get_at((5, 5))[:3] == BLUE and screen.get_at((5, h - 5))[:3] == RED
