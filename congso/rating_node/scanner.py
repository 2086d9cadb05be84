"""The receipt's barcode scanner: a USB keyboard that types the dossier code fast and presses Enter.

Two ways in, one assembler:

- ``[rating] scanner = ""``: the scanner's keys arrive as the screen's key
  events (SDL ``KEYDOWN`` / ``TEXTINPUT``), read in the kiosk's own loop
  (``KeyEvents``);
- ``[rating] scanner = /dev/input/by-id/...-event-kbd``: the kiosk reads that
  evdev device itself (``EvdevScanner``), with the standard library: the
  kernel's ``struct input_event`` records, keys mapped as a scanner in US
  keyboard layout sends them (python-evdev is not needed for that), and the
  device grabbed so the keys do not also reach the console or SDL.

``Scans`` turns keys into scans: keys closer together than
``[rating] scanner_gap_ms`` form one scan and Enter ends it. A person typing
is slower than the gap, so their keys never add up to a scan and nothing is
shown for them. A scan is then read as a dossier code (``vocab.dossiers.code_in_scan``):
the national form ``000.00.12.H56-261201-0001`` (the agency's code, the
receipt date yymmdd, a number), or a QR code's URL of the province portal
with that code in it.
"""

from __future__ import annotations

import logging
import os
import re
import select
import struct
import threading
from typing import Callable

from ..devices import MISSING, OK

log = logging.getLogger(__name__)

MIN_SCAN_CHARS = 6      # fewer fast keys before Enter: a keyboard's key repeat, not a barcode
MAX_SCAN_CHARS = 512    # a QR with a long URL still fits

class Scans:
    """Keys in, scans out. Times in seconds (monotonic, or the kernel's key times)."""

    def __init__(self, gap_s: float, on_scan: Callable[[str], None]):
        self.gap_s = gap_s
        self.on_scan = on_scan
        self._chars: list[str] = []
        self._last = float("-inf")

    def char(self, ch: str, at: float) -> None:
        if not ch or not ch.isprintable():
            return
        if at - self._last > self.gap_s:
            self._chars = []  # a pause: whatever came before was typed, not scanned
        self._last = at
        if len(self._chars) < MAX_SCAN_CHARS:
            self._chars.append(ch)

    def enter(self, at: float) -> None:
        chars, self._chars = self._chars, []
        fast = at - self._last <= self.gap_s
        if fast and len(chars) >= MIN_SCAN_CHARS:
            self.on_scan("".join(chars))


class KeyEvents:
    """SDL key events -> ``Scans``. Characters come from ``TEXTINPUT`` once SDL sends it
    (a real keyboard under SDL sends both), else from ``KEYDOWN``'s ``unicode``."""

    def __init__(self, scans: Scans):
        self.scans = scans
        self._text_mode = False
        self._last_keydown: str | None = None

    def handle(self, event, at: float) -> bool:
        import pygame

        if event.type == pygame.KEYDOWN:
            if event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
                self._last_keydown = None
                self.scans.enter(at)
            else:
                ch = getattr(event, "unicode", "") or ""
                self._last_keydown = ch
                if not self._text_mode:
                    self.scans.char(ch, at)
            return True
        if event.type == pygame.TEXTINPUT:
            first = not self._text_mode
            self._text_mode = True
            if first and event.text == self._last_keydown:
                return True  # the same key, already taken from its KEYDOWN
            for ch in event.text:
                self.scans.char(ch, at)
            return True
        return False


# -- evdev ---------------------------------------------------------------------------

EVENT = struct.Struct("@lLHHi")   # struct input_event: timeval (long sec, long usec), type, code, value
EV_KEY = 1
EVIOCGRAB = 0x40044590            # _IOW('E', 0x90, int): the keys are ours alone
KEY_ENTER, KEY_KPENTER = 28, 96
SHIFTS = {42, 54}
# Linux key codes -> (plain, shifted), US layout.
_ROWS = {2: "1!", 3: "2@", 4: "3#", 5: "4$", 6: "5%", 7: "6^", 8: "7&", 9: "8*", 10: "9(", 11: "0)",
         12: "-_", 13: "=+", 26: "[{", 27: "]}", 39: ";:", 40: "'\"", 41: "`~", 43: "\\|", 51: ",<",
         52: ".>", 53: "/?", 57: "  "}
for _code, _row in zip(range(16, 26), "qwertyuiop"):
    _ROWS[_code] = _row + _row.upper()
for _code, _row in zip(range(30, 39), "asdfghjkl"):
    _ROWS[_code] = _row + _row.upper()
for _code, _row in zip(range(44, 51), "zxcvbnm"):
    _ROWS[_code] = _row + _row.upper()
for _code, _ch in {71: "7", 72: "8", 73: "9", 74: "-", 75: "4", 76: "5", 77: "6", 78: "+", 79: "1", 80: "2",
                   81: "3", 82: "0", 83: ".", 98: "/", 55: "*"}.items():
    _ROWS[_code] = _ch + _ch
KEYMAP = dict(_ROWS)


class EvdevScanner:
    """Reads one evdev keyboard (the scanner) on a thread; keys go to ``Scans`` with the kernel's times.

    A missing path or a device unplugged is ``status`` missing, looked for again
    every few seconds; it never stops the kiosk.
    """

    RETRY_S = 3.0

    def __init__(self, path: str, scans: Scans, deliver: Callable[[Callable[[], None]], None]):
        self.path = path
        self.scans = scans
        self.deliver = deliver  # runs a function on the kiosk's UI thread
        self.status = MISSING
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "EvdevScanner":
        self._thread = threading.Thread(target=self._run, name="scanner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)

    def _run(self) -> None:
        logged = None
        while not self._stop.is_set():
            try:
                self._read_device()
            except OSError as e:
                self.status = MISSING
                self.last_error = f"scanner {self.path}: {e.strerror or e}"
                if self.last_error != logged:
                    log.warning("%s; plug the scanner in or fix [rating] scanner (looking again every %.0f s)",
                                self.last_error, self.RETRY_S)
                    logged = self.last_error
            self._stop.wait(self.RETRY_S)

    def _read_device(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            try:
                import fcntl

                fcntl.ioctl(fd, EVIOCGRAB, 1)
            except OSError as e:  # not an evdev node (a test's pipe), or grabbed already: read anyway
                log.debug("could not grab %s: %s", self.path, e)
            self.status, self.last_error = OK, None
            log.info("barcode scanner: reading %s", self.path)
            shift = False
            buf = b""
            while not self._stop.is_set():
                if not select.select([fd], [], [], 0.5)[0]:
                    continue  # a timeout: look at the stop flag
                try:
                    data = os.read(fd, EVENT.size * 64)
                except BlockingIOError:
                    continue
                if not data:
                    raise OSError(0, "device closed")
                buf += data
                while len(buf) >= EVENT.size:
                    sec, usec, etype, code, value = EVENT.unpack_from(buf)
                    buf = buf[EVENT.size:]
                    if etype != EV_KEY:
                        continue
                    if code in SHIFTS:
                        shift = value != 0
                    elif value == 1:  # a press (not a release, not auto-repeat)
                        self._key(code, shift, sec + usec / 1e6)
        finally:
            self.status = MISSING
            os.close(fd)

    def _key(self, code: int, shift: bool, at: float) -> None:
        if code in (KEY_ENTER, KEY_KPENTER):
            self.deliver(lambda: self.scans.enter(at))
            return
        row = KEYMAP.get(code)
        if row is not None:
            ch = row[1] if shift else row[0]
            self.deliver(lambda: self.scans.char(ch, at))


def input_event(code: int, value: int, at: float, etype: int = EV_KEY) -> bytes:
    """One kernel ``struct input_event`` (the bench and tests write these)."""
    sec = int(at)
    return EVENT.pack(sec, int((at - sec) * 1e6), etype, code, value)


def key_codes(text: str) -> list[tuple[int, bool]]:
    """(code, shift) of each character of ``text`` on a US keyboard (for tests and the bench)."""
    back = {}
    for code, row in KEYMAP.items():
        if code < 71 or code > 83:  # the main block, not the keypad
            back.setdefault(row[0], (code, False))
            back.setdefault(row[1], (code, True))
    return [back[ch] for ch in text]
