"""The screen of the TV signage node (and the kiosk), drawn with pygame.

The program draws on ``Display.surface`` upright, in the orientation the
viewer sees (1080x1920 for a TV hung in portrait); ``present()`` turns that
picture onto the real screen and shows it. There is no desktop on a node: SDL
draws straight to the screen through kmsdrm, and everything else is a
fallback chosen the same way on a Pi, a developer's laptop and in the tests.

A TV gets unplugged, switched to another input or swapped for another model.
``present()`` never raises for that: it reopens the display with backoff and
says how it went in ``status``, for the health heartbeat.

Vietnamese text: every string is NFC-normalised before drawing. Text typed
on some phones and Macs arrives decomposed ("e" + circumflex + tilde for
"ễ"); pip's pygame shapes that with HarfBuzz, but pygame.freetype and an
SDL_ttf built without HarfBuzz draw each mark as a glyph of its own, and a
vowel's two marks collide. And the font must have a glyph for every
Vietnamese letter with every tone mark: ``find_font`` accepts nothing less.
"""

from __future__ import annotations

import ctypes
import functools
import io
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402
import pygame.freetype  # noqa: E402

from congso.devices import ERROR, MISSING, OK, CheckResult  # noqa: E402
# Composed form: "ễ" as one code point, the font's own glyph with both marks placed.
from congso.vocab.text import nfc  # noqa: E402

log = logging.getLogger(__name__)

FONT_FIX = "apt install fonts-dejavu-core"
KMSDRM_FIX = ("add the user to the video and render groups; "
              "enable KMS: dtoverlay=vc4-kms-v3d in /boot/firmware/config.txt")
NO_KMSDRM_FIX = ("this pygame's SDL has no kmsdrm driver (pip's pygame wheel lacks it): "
                 "sudo /opt/congso/venv/bin/pip uninstall -y pygame && sudo apt install python3-pygame "
                 "(Debian's, on the system SDL with kmsdrm; the venv sees it), or rerun sudo congso install")

# Each row: a vowel bare, then with huyền, sắc, hỏi, ngã, nặng.
_VOWEL_ROWS = (
    "aàáảãạ", "ăằắẳẵặ", "âầấẩẫậ", "eèéẻẽẹ", "êềếểễệ", "iìíỉĩị",
    "oòóỏõọ", "ôồốổỗộ", "ơờớởỡợ", "uùúủũụ", "ưừứửữự", "yỳýỷỹỵ",
)
_LOWER = "".join(_VOWEL_ROWS) + "bcdđghklmnpqrstvx"
# Every Vietnamese letter with every tone mark, lower and upper case.
VIETNAMESE_SAMPLE = _LOWER + _LOWER.upper()

DEFAULT_FONT_NAMES = ("DejaVuSans.ttf",)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
MAX_FONTS_SCANNED = 300  # a machine with thousands of fonts must not stall start-up

# SDL 2 draws on a console only through KMS/DRM (fbcon and directfb were SDL 1.2's).
CONSOLE_DRIVERS = ("kmsdrm",)
DESKTOP_DRIVERS = ("wayland", "x11")
HEADLESS_DRIVERS = ("dummy", "offscreen", "evdev")  # evdev: SDL's dummy video with evdev input


class FontError(RuntimeError):
    """No font with full Vietnamese coverage was found."""


class DisplayError(RuntimeError):
    """No display could be opened with the driver asked for."""


# -- fonts -------------------------------------------------------------------

def font_covers_vietnamese(path: str | os.PathLike) -> tuple[bool, str]:
    """(True, "") if the font has a glyph for every char of VIETNAMESE_SAMPLE, else (False, missing).

    pygame.freetype's get_metrics() gives None for a char the font lacks;
    pygame.font's metrics() does not (it returns the .notdef box's metrics
    for a missing BMP char), so it cannot tell.
    Raises OSError for a file that is not a readable font.
    """
    return _missing_glyphs(path, VIETNAMESE_SAMPLE)


def _missing_glyphs(path: str | os.PathLike, chars: str) -> tuple[bool, str]:
    if not pygame.freetype.get_init():
        pygame.freetype.init()
    try:
        font = pygame.freetype.Font(os.fspath(path), 16)
    except (OSError, pygame.error) as e:
        raise OSError(f"{path}: not a readable font ({e})") from None
    chars = "".join(dict.fromkeys(c for c in chars if not c.isspace()))
    missing = "".join(c for c, m in zip(chars, font.get_metrics(chars)) if m is None)
    return not missing, missing


def _font_files() -> list[str]:
    files: list[str] = []
    for directory in FONT_DIRS:
        root = os.path.expanduser(directory)
        for dirpath, _, names in sorted(os.walk(root)):
            files += [os.path.join(dirpath, n) for n in sorted(names) if n.lower().endswith(FONT_SUFFIXES)]
    return files


def _fc_match() -> str:
    """fontconfig's best sans-serif font for Vietnamese, if fontconfig is installed."""
    if not shutil.which("fc-match"):
        return ""
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}", "sans-serif:lang=vi"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def find_font(preferred: str = "") -> str:
    """A font file that draws all Vietnamese: ``preferred``, DejaVu Sans, fontconfig's pick, any other.

    Raises FontError naming every file tried and why it was refused.
    """
    tried: dict[str, str] = {}

    def candidates():
        if preferred:
            yield preferred
        files = _font_files()
        yield from (f for f in files if os.path.basename(f) in DEFAULT_FONT_NAMES)
        yield _fc_match()
        # Others, sans-serif regular faces first: the likeliest to read well on a TV.
        yield from sorted(files, key=lambda f: ("sans" not in f.lower(), "bold" in f.lower() or
                                                 "italic" in f.lower() or "oblique" in f.lower(), f))

    for path in candidates():
        if not path or path in tried:
            continue
        if len(tried) >= MAX_FONTS_SCANNED:
            break
        if not os.path.isfile(path):
            tried[path] = "no such file"
            continue
        try:
            ok, missing = font_covers_vietnamese(path)
        except OSError as e:
            tried[path] = str(e)
            continue
        if ok:
            if preferred and path != preferred:
                log.warning("font %s refused (%s); using %s", preferred, tried.get(preferred), path)
            return path
        tried[path] = f"no glyph for {len(missing)} of the letters, e.g. {missing[:12]}"
    lines = "\n".join(f"  {p}: {why}" for p, why in tried.items()) or "  (no font files found)"
    raise FontError(f"no font draws every Vietnamese letter; tried:\n{lines}\nfix: {FONT_FIX}")


# -- SDL video drivers -------------------------------------------------------

@functools.cache
def compiled_video_drivers() -> tuple[str, ...] | None:
    """The video drivers built into the SDL pygame loaded, or None if that cannot be told.

    SDL says "kmsdrm not available" both when there is no screen and when it
    was built without kmsdrm (as in pygame's pip wheels); only this tells
    which, so a black TV comes with the right fix. pygame has no call for
    it, so ask SDL itself through the library already in this process.
    """
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libSDL2" in line and ".so" in line}
        for path in sorted(paths):
            if "SDL2_" in os.path.basename(path):  # SDL2_ttf, SDL2_image ...
                continue
            lib = ctypes.CDLL(path)
            lib.SDL_GetVideoDriver.restype = ctypes.c_char_p
            lib.SDL_GetVideoDriver.argtypes = [ctypes.c_int]
            return tuple(lib.SDL_GetVideoDriver(i).decode() for i in range(lib.SDL_GetNumVideoDrivers()))
    except (OSError, AttributeError):
        pass
    return None


def has_driver(compiled: tuple[str, ...] | None, driver: str) -> bool:
    """Whether ``driver`` is in SDL's list, whatever its case: SDL 2 reports
    "KMSDRM" and matches SDL_VIDEODRIVER without regard to case."""
    return compiled is None or driver.lower() in {d.lower() for d in compiled}


def plan(drivers: list[str], explicit: bool, compiled: tuple[str, ...] | None) -> tuple[list[str], dict[str, str]]:
    """(the drivers to try in order, the ones skipped and why), for SDL's ``compiled`` list.

    A driver asked for explicitly is always tried: SDL's own error then says
    why it fails, which is what the technician needs to read.
    """
    tried, skipped = [], {}
    for driver in drivers:
        if explicit or has_driver(compiled, driver):
            tried.append(driver)
        else:
            skipped[driver] = "not built into this SDL"
    return tried, skipped


# A Pi 3 cannot drive 4K and a Pi 4 only at 30 Hz with its GPU at the limit:
# there congso draws at 1080p and the TV (a 65-inch 4K set, often) scales.
FULL_HD_LONG_SIDE = 1920
SMALL_PIS = ("Raspberry Pi 3", "Raspberry Pi 4")


def pi_model(path: str = "/proc/device-tree/model") -> str:
    try:
        return Path(path).read_text(errors="replace").strip("\0\n ")
    except OSError:
        return ""


def render_size(model: str, screen: tuple[int, int]) -> tuple[int, int]:
    """The mode to ask for when [display] width/height are not set: (0, 0),
    the screen's own, except on a Pi 3 or 4 with a screen beyond 1080p, where
    the same picture at 1080p (a TV's 4K is twice 1080p each way)."""
    w, h = screen
    if not any(model.startswith(m) for m in SMALL_PIS) or max(w, h) <= FULL_HD_LONG_SIDE:
        return (0, 0)
    factor = FULL_HD_LONG_SIDE / max(w, h)
    return (round(w * factor), round(h * factor))


def _choice(settings_driver: str) -> tuple[list[str], bool]:
    """(drivers to try in order, whether they were asked for explicitly)."""
    env = os.environ.get("SDL_VIDEODRIVER", "").strip()
    if env:
        return [env], True
    if settings_driver:
        return [settings_driver], True
    auto = list(CONSOLE_DRIVERS)
    if os.environ.get("WAYLAND_DISPLAY"):
        auto.append("wayland")
    if os.environ.get("DISPLAY"):
        auto.append("x11")
    return auto + ["dummy"], False


class Display:
    """One screen, full size unless width/height are set, drawn upright on ``surface``.

    ``rotation`` turns the picture clockwise onto the screen: with 90, what
    is drawn at the top-left of ``surface`` lands at the screen's top-right,
    right for a TV hung with its own top edge on the viewer's left. If the
    picture comes out upside down, 270 is the other way round.

    pygame has one screen per process, so there is one Display at a time.
    """

    REOPEN_MIN_S = 0.5   # first retry after a failed reopen; doubles each time ...
    REOPEN_MAX_S = 30.0  # ... up to this, also the pace of looking for a screen from dummy
    # WINDOWDISPLAYCHANGED is pygame 2.1.3's; Debian 12's python3-pygame is 2.1.2.
    _SIZE_EVENTS = tuple(getattr(pygame, name) for name in (
        "VIDEORESIZE", "WINDOWRESIZED", "WINDOWSIZECHANGED", "WINDOWDISPLAYCHANGED") if hasattr(pygame, name))

    def __init__(self, settings_display: Any):
        self.rotation = int(settings_display.rotation) % 360
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError(f"[display] rotation must be 0, 90, 180 or 270, got {settings_display.rotation}")
        self._settings_driver = str(settings_display.driver).strip()
        self._asked_size = (int(settings_display.width), int(settings_display.height))
        self._font_setting = str(settings_display.font)
        self._font_path = ""
        self._fonts: dict[int, pygame.font.Font] = {}
        self.driver = ""
        self.tried: dict[str, str] = {}  # driver -> why it failed, at the last open
        self.surface: pygame.Surface | None = None
        self._status = ""  # not opened yet
        self._delay = self.REOPEN_MIN_S
        self._next_try = 0.0
        self._closed = False

    @classmethod
    def open(cls, settings_display: Any) -> Display:
        """Open the screen. Raises DisplayError only when a driver named in the
        environment or the settings fails; the automatic choice ends on dummy."""
        display = cls(settings_display)
        display._connect()
        physical = pygame.display.get_surface().get_size()
        display.surface = pygame.Surface(display._logical(physical), 0, 32)
        display.surface.fill((0, 0, 0))
        return display

    # -- public ---------------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        """Logical size: what the program draws on, upright."""
        return self.surface.get_size()

    @property
    def status(self) -> str:
        """"ok"; "missing": nothing visible (the automatic choice ended on dummy); "error": lost."""
        return self._status

    def present(self, rect: tuple[int, int, int, int] | None = None) -> None:
        """Show ``surface`` on the screen (only ``rect`` of it when only that changed:
        the TV's ticker strip). Never raises: a lost screen is reopened (at once,
        then with backoff) and ``status`` says how it goes."""
        if self._closed:
            return
        try:
            self._handle_events()
            self._show(rect if self._status == OK else None)
        except pygame.error as e:
            if self._status != ERROR:
                log.warning("display %s lost: %s; reopening", self.driver, e)
                self._status = ERROR
                self._delay, self._next_try = self.REOPEN_MIN_S, 0.0
        if self._status == OK or time.monotonic() < self._next_try:
            return
        # Lost, or drawing to dummy for want of a screen: (re)open, and look
        # for a real screen again (a TV switched on after the node started).
        try:
            self._connect()
            self._show()
        except (pygame.error, DisplayError) as e:
            log.info("display reopen failed (%s); next try in %.1f s", e, self._delay)
            self._status = ERROR
            self._backoff()

    def font(self, size: int) -> pygame.font.Font:
        """The Vietnamese font at ``size`` pixels (found on first use; FontError if none)."""
        if size not in self._fonts:
            if not self._font_path:
                self._font_path = find_font(self._font_setting)
            if not pygame.font.get_init():
                pygame.font.init()
            self._fonts[size] = pygame.font.Font(self._font_path, size)
        return self._fonts[size]

    def render_text(self, text: str, size: int, color: Any = (255, 255, 255)) -> pygame.Surface:
        """One line of text as an image, NFC-normalised first."""
        return self.font(size).render(nfc(text), True, color)

    def draw_text(self, text: str, pos: tuple[int, int], size: int, color: Any = (255, 255, 255),
                  anchor: str = "topleft") -> pygame.Rect:
        """Draw one line on ``surface``; ``anchor`` is a pygame.Rect attribute ("center", "midtop" ...)."""
        image = self.render_text(text, size, color)
        rect = image.get_rect(**{anchor: pos})
        self.surface.blit(image, rect)
        return rect

    def screenshot_png(self, max_width: int | None = None) -> bytes:
        """The picture as drawn (upright) as PNG, scaled down to ``max_width`` keeping its aspect.

        It reads ``surface``: take it between frames, from the drawing thread.
        """
        image = self.surface
        w, h = image.get_size()
        if max_width and w > max_width:
            image = pygame.transform.smoothscale(image, (max_width, max(1, round(h * max_width / w))))
        buf = io.BytesIO()
        pygame.image.save(image, buf, "screenshot.png")
        return buf.getvalue()

    def save_screenshot(self, path: str | os.PathLike, max_width: int | None = None) -> None:
        Path(path).write_bytes(self.screenshot_png(max_width))

    def release(self) -> None:
        """Give the screen to another program for a while (a video player on DRM, which
        needs the KMS master): SDL's display is closed, the drawing surface is kept."""
        if pygame.display.get_init():
            pygame.display.quit()

    def reacquire(self) -> None:
        """Take the screen back after ``release`` and show the picture. Never raises: a
        screen that does not come back is retried by ``present`` (with backoff)."""
        try:
            self._connect()
            self._show()
        except (pygame.error, DisplayError) as e:
            log.warning("display %s not back after a handoff: %s; retrying", self.driver, e)
            self._status = ERROR
            self._backoff()

    def close(self) -> None:
        self._closed = True
        if pygame.display.get_init():
            pygame.display.quit()

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- opening --------------------------------------------------------------

    def _logical(self, physical: tuple[int, int]) -> tuple[int, int]:
        w, h = physical
        return (h, w) if self.rotation in (90, 270) else (w, h)

    def _backoff(self) -> None:
        self._next_try = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.REOPEN_MAX_S)

    def _connect(self) -> None:
        """Open the first driver of the current choice that sets a video mode."""
        if pygame.display.get_init():
            pygame.display.quit()
        drivers, explicit = _choice(self._settings_driver)
        compiled = compiled_video_drivers()
        drivers, self.tried = plan(drivers, explicit, compiled)
        for driver in drivers:
            try:
                self._set_mode(driver)
            except pygame.error as e:
                self.tried[driver] = str(e) if has_driver(compiled, driver) else (
                    f"{e} (this SDL has only {', '.join(compiled)}: set [display] driver to one of them, "
                    "kmsdrm on a Pi, or leave it empty)")
                log.debug("display driver %s: %s", driver, e)
                if pygame.display.get_init():
                    pygame.display.quit()
                continue
            break
        else:
            raise DisplayError("no display: " + "; ".join(f"{d}: {why}" for d, why in self.tried.items())
                               + f"; fix: {_display_fix(compiled)}")
        previous, self.driver = self._status, pygame.display.get_driver()
        size = pygame.display.get_surface().get_size()
        if driver.lower() in HEADLESS_DRIVERS and not explicit:
            self._status = MISSING
            self._backoff()
            if previous != MISSING:
                log.warning("no screen found, drawing to the %s driver: nothing will be visible "
                            "(tried %s); fix: %s", driver,
                            "; ".join(f"{d}: {why}" for d, why in self.tried.items()), _display_fix(compiled))
        else:
            self._status = OK
            self._delay, self._next_try = self.REOPEN_MIN_S, 0.0
            log.info("display %son %s, %dx%d, rotation %d", "back " if previous else "",
                     self.driver, *size, self.rotation)

    def _set_mode(self, driver: str) -> None:
        # SDL reads its driver from the environment at init; put back what was
        # there so a child process or a later open sees the user's own choice.
        before = os.environ.get("SDL_VIDEODRIVER")
        os.environ["SDL_VIDEODRIVER"] = driver
        try:
            pygame.display.init()
        finally:
            if before is None:
                os.environ.pop("SDL_VIDEODRIVER", None)
            else:
                os.environ["SDL_VIDEODRIVER"] = before
        w, h = self._asked_size
        if not (w and h):
            size = (0, 0)  # the screen's own size
            if driver.lower() in CONSOLE_DRIVERS:
                screens = pygame.display.get_desktop_sizes()
                size = render_size(pi_model(), screens[0]) if screens else size
            pygame.display.set_mode(size, pygame.FULLSCREEN)
        elif driver.lower() in CONSOLE_DRIVERS:
            pygame.display.set_mode((w, h), pygame.FULLSCREEN)
        else:
            # A window: a developer previewing a TV's layout on a desktop. (A
            # FULLSCREEN dummy would be 1024x768 whatever the size asked.)
            pygame.display.set_mode((w, h))
        if driver.lower() not in HEADLESS_DRIVERS:
            pygame.mouse.set_visible(False)
        pygame.display.set_caption("congso")

    def _handle_events(self) -> None:
        """Window resized or moved to another screen: nothing to redo, as
        ``_show`` fits the picture to the screen surface of the moment."""
        if pygame.display.get_init():
            for event in pygame.event.get(self._SIZE_EVENTS):
                log.info("display event %s; the picture follows", pygame.event.event_name(event.type))

    def _show(self, rect=None) -> None:
        screen = pygame.display.get_surface() if pygame.display.get_init() else None
        if screen is None:
            raise pygame.error("display closed")
        if rect is not None and not self.rotation and self.surface.get_size() == screen.get_size():
            screen.blit(self.surface, rect[:2], rect)  # the rest of the screen already shows the rest
            pygame.display.update(rect)
            return
        frame = self.surface
        if self.rotation:
            frame = pygame.transform.rotate(frame, -self.rotation)  # pygame turns anticlockwise
        if frame.get_size() != screen.get_size():
            # Another TV after a reopen: fit the picture rather than crop it.
            frame = pygame.transform.scale(frame, screen.get_size())
        screen.blit(frame, (0, 0))
        pygame.display.flip()


def _display_fix(compiled: tuple[str, ...] | None) -> str:
    if not has_driver(compiled, "kmsdrm"):
        return NO_KMSDRM_FIX
    return KMSDRM_FIX


# -- selftest ------------------------------------------------------------------

def check(settings: Any) -> list[CheckResult]:
    """Can a display be opened (which driver, what size), and is there a Vietnamese font."""
    results = []
    d = settings.display
    try:
        display = Display.open(d)
    except (DisplayError, ValueError) as e:
        results.append(CheckResult("display", False, str(e).split("; fix: ")[0],
                                   _display_fix(compiled_video_drivers())))
    else:
        w, h = pygame.display.get_surface().get_size()
        detail = f"{display.driver} {w}x{h}"
        if display.rotation:
            detail += f", rotation {display.rotation} (drawn as {display.size[0]}x{display.size[1]})"
        if display.status == OK:
            results.append(CheckResult("display", True, detail))
        else:
            why = "; ".join(f"{drv}: {msg}" for drv, msg in display.tried.items())
            fix = _display_fix(compiled_video_drivers())
            if fix == KMSDRM_FIX:
                fix += "; if congso already shows on this screen, stop it before the selftest"
            results.append(CheckResult("display", False, f"{detail}, nothing visible ({why})", fix))
        display.close()
    try:
        path = find_font(d.font)
    except FontError as e:
        results.append(CheckResult("display font", False, str(e).split("\nfix:")[0], FONT_FIX))
    else:
        if d.font and path != d.font:
            # The node would still draw (with the fallback), but not in the
            # font the technician chose: say so rather than pass quietly.
            why = "no such file" if not os.path.isfile(d.font) else "it lacks Vietnamese letters"
            results.append(CheckResult(
                "display font", False, f"[display] font {d.font} refused ({why}); the node falls back to {path}",
                f"set [display] font to a font covering Vietnamese, or leave it empty; {FONT_FIX}"))
        else:
            results.append(CheckResult("display font", True, f"{path} covers all Vietnamese letters"))
    return results
