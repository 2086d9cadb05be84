"""An in-process card reader for the door's logic tests: ``[card] backend = memory``.

What gpiozero's ``MockFactory`` is to the pins: the door node runs exactly
as with a PC/SC reader, and the test says what happens at the reader
(``node.card.tap("04A1B2C3")``, ``fail(...)``, ``unplug()``) instead of
driving pcscd and a virtual card. The taps go through the real reader's
debounce (``CardReader._tapped``), and ``on_card`` runs on the caller's
thread, so a tap's feedback is there when ``tap`` returns.

The reader itself (pcscd, a card lying on it, pcscd restarted) is tested
against the real pcscd with vpcd's virtual reader; so is the door end to end.
"""

from __future__ import annotations

import threading
from typing import Callable

from .cardreader import CardReader

NAME = "memory reader"


class MemoryCardReader(CardReader):
    """A ``CardReader`` with no PC/SC behind it: taps come from ``tap``."""

    def __init__(self, reader: str = "", *, on_card: Callable[[str], None], debounce_s: float = 2.0,
                 on_error: Callable[[str], None] | None = None):
        super().__init__(reader, on_card=on_card, debounce_s=debounce_s, on_error=on_error)
        self._started = False
        self._tap_lock = threading.Lock()  # two test threads tapping at once: one after the other, as on a reader

    @property
    def running(self) -> bool:
        return self._started

    def start(self) -> "MemoryCardReader":
        self._started = True
        self._missing = False
        self.reader_name = NAME
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._started = False

    # -- what happens at the reader -------------------------------------------
    def tap(self, uid: str) -> None:
        """A card brought to the reader and read (hex UID, any case)."""
        self._check_present("tap")
        with self._tap_lock:
            self._read_errors_in_row = 0
            self._tapped(uid.strip().upper())

    def fail(self, message: str = "card removed during read") -> None:
        """A tap that gave no UID (card pulled mid-read, a bad reply)."""
        self._check_present("fail")
        with self._tap_lock:
            self._read_failed(message, counts=True)

    def unplug(self) -> None:
        """The reader is gone: status "missing" until ``plug``."""
        self._missing = True
        self.reader_name = None
        self.last_error = f"no reader matching {self.reader!r}" if self.reader else "no reader"

    def plug(self) -> None:
        self._missing = False
        self.reader_name = NAME

    def _check_present(self, what: str) -> None:
        if not self._started:
            raise RuntimeError(f"{what}: the memory card reader is not started")
        if self._missing:
            raise RuntimeError(f"{what}: the memory card reader is unplugged")
