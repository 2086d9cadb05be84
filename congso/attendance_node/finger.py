"""The fingerprint side of the door: wait for a finger, identify it, report it.

One thread owns the module. It waits for a finger on the module's touch
line when ``[gpio] touch`` is wired (no UART traffic while nobody is
there), otherwise it asks the module for an image every
``[attendance] finger_poll_s``. Each finger is captured, searched in the
module's library and handed to ``on_finger(slot | None, score | None)``;
then the loop waits for the finger to be lifted, so a finger resting on
the sensor is one scan, not one a second.

Enrolment needs the same module for many seconds: ``exclusive()`` pauses
the loop (between two polls, never in the middle of one) until it ends.

A module that is missing, silent or garbled never stops the thread: the
error is logged once, shown in ``status`` (health), and the module is
tried again after a pause; the card side of the door goes on meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Callable, Iterator

from congso.devices import ERROR, MISSING, OK
from congso.devices.fingerprint import FingerprintError, FingerprintModule, PortError, SensorError
from congso.devices.fingerprint.errors import NO_FINGER

log = logging.getLogger(__name__)

RETRY_S = 2.0        # after a module failure, wait this long before trying again
LIFT_WAIT_S = 5.0    # a finger left longer than this on the sensor counts as lifted


class FingerSource:
    def __init__(self, module: FingerprintModule, on_finger: Callable[[int | None, int | None], None],
                 poll_s: float = 0.15, touch=None, on_bad_image: Callable[[str], None] | None = None):
        self.module = module
        self.on_finger = on_finger
        self.on_bad_image = on_bad_image
        self.poll_s = poll_s
        self.touch = touch  # gpio.TouchLine or None
        self.scans = 0
        self._turn = threading.Lock()  # held by the loop for one poll, by enrolment for all of it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = False
        self._logged: str | None = None

    @property
    def status(self) -> str:
        return self.module.status if self._opened else MISSING

    def open(self) -> bool:
        """Handshake with the module; False (and the reason logged) when it is not there."""
        try:
            self.module.open()
            self._opened = True
            self._logged = None
            return True
        except FingerprintError as e:
            self._trouble(f"fingerprint module not available ({e})")
            return False

    def start(self) -> "FingerSource":
        self.loop_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="finger", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.module.close()

    @contextlib.contextmanager
    def exclusive(self, timeout: float = 10.0) -> Iterator[FingerprintModule]:
        """The module for a command (enrol, delete, export): the scan loop waits meanwhile."""
        if not self._turn.acquire(timeout=timeout):
            raise RuntimeError("the fingerprint module is busy")
        try:
            if not self._opened and not self.open():
                raise RuntimeError(f"no fingerprint module on this door: {self.module.last_error}")
            yield self.module
        finally:
            self._turn.release()

    # -- the loop -----------------------------------------------------------
    def loop_age_s(self) -> float:
        """Seconds since the scan loop last went round (the door's watchdog reads it)."""
        return time.monotonic() - self.loop_at

    def _run(self) -> None:
        while not self._stop.is_set():
            self.loop_at = time.monotonic()
            if not self._opened and not self.open():
                self._stop.wait(RETRY_S * 5)
                continue
            if self.touch is not None:
                if not self.touch.wait_for_touch(timeout=0.5):
                    continue
            else:
                self._stop.wait(self.poll_s)
            try:
                with self._turn:
                    if self._stop.is_set():
                        return
                    self._poll_once()
                self._logged = None
            except SensorError as e:
                # A smudged or partial image: the person should try again.
                log.info("finger not read: %s", e)
                if self.on_bad_image:
                    self.on_bad_image(str(e))
                with self._turn:
                    self._wait_lifted()
            except FingerprintError as e:
                self._trouble(f"fingerprint module failed: {e}")
                if isinstance(e, PortError):
                    self._opened = False
                self._stop.wait(RETRY_S)
            except Exception:
                log.exception("finger loop failed; going on")
                self._stop.wait(RETRY_S)

    def _poll_once(self) -> None:
        if not self.module.capture(1, 0.0):
            return  # nobody there
        try:
            match = self.module.search_library(1)
        except SensorError as e:
            if e.code != NO_FINGER:
                raise
            match = None
        self.scans += 1
        self.on_finger(match.slot if match else None, match.score if match else None)
        self._wait_lifted()

    def _wait_lifted(self) -> None:
        """Until the finger is off the sensor (at most LIFT_WAIT_S); the turn is held already."""
        deadline = time.monotonic() + LIFT_WAIT_S
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self.touch is not None:
                    if not self.touch.is_touched:
                        return
                elif not self.module.gen_img():
                    return
                time.sleep(0.01 if self.touch is not None else max(min(self.poll_s, 0.05), 0.005))
        except FingerprintError as e:
            log.info("while waiting for the finger to lift: %s", e)

    def _trouble(self, message: str) -> None:
        if message != self._logged:
            log.error("%s; the door goes on with cards", message)
            self._logged = message


def device_state(source: FingerSource | None) -> str:
    if source is None:
        return MISSING
    state = source.status
    return state if state in (OK, MISSING, ERROR) else ERROR
