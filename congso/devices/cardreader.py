"""Contactless card reader (ACR122U and friends) through pcscd and pyscard.

A daemon thread waits for cards on one reader, reads each new card's UID
with the PC/SC part 3 pseudo-APDU ``FF CA 00 00 00`` and hands it to
``on_card``. It never gives up: pcscd restarted, the reader unplugged or a
card pulled mid-read are logged, shown in ``status``, and recovered from.

Why not pyscard's CardMonitor or CardRequest, though they are the library's
way of waiting for cards:

- CardMonitor's thread dies for good on the first PC/SC error, which is
  what a pcscd restart gives (``SCARD_F_COMM_ERROR`` for a wait in
  progress, then ``SCARD_E_NO_SERVICE`` on that context forever).
- ``CardRequest(newcardonly=True).waitforcard()`` forgets the reader state
  between calls: a card put down between two calls is "already there" to
  the next one and never reported, and it only renews its context on
  ``SCARD_E_NO_SERVICE``, not ``SCARD_F_COMM_ERROR``.

So the loop below keeps the reader state itself and calls pyscard's
``smartcard.scard`` (its PC/SC API) on a context it owns and replaces
after any failure; the card is read on that same context, so a read never
uses one from before a pcscd restart. (pyscard 2.x itself no longer
shares a context: ``readers()`` and each ``PCSCCardConnection`` open their
own.) pcsc-lite puts an event counter in the top 16 bits of the reader
state, bumped on every insertion and removal, which tells a new card from
the same card still lying there even when both changes fell between two
waits.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from smartcard import scard
from smartcard.util import PACK, toHexString

from . import ERROR, MISSING, OK, CheckResult

log = logging.getLogger(__name__)

GET_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]  # PC/SC part 3, Get Data: UID of the card in the field
WAIT_MS = 1000            # one SCardGetStatusChange; stop() cancels it anyway
BACKOFF_MIN_S = 0.2       # first retry after a PC/SC failure, doubling ...
BACKOFF_MAX_S = 5.0       # ... up to this
ERROR_AFTER = 3           # failures in a row before status says "error"
REMOVAL_GRACE_S = 1.0     # pcscd polls presence every 0.4 s; time to see a pulled card go
PNP = "\\\\?PnP?\\Notification"  # pcsc-lite's pseudo-reader: wakes on readers added/removed

# The daemon (or its connection) is gone: a new context is the only way on.
_DAEMON_GONE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_F_COMM_ERROR,
                scard.SCARD_E_INVALID_HANDLE}
_READER_GONE = {scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_NO_READERS_AVAILABLE}
_CARD_GONE = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD}
# Status words of a card that has no UID to give (PC/SC part 3 and ISO 7816-4).
_NO_GET_UID = {0x6A81, 0x6D00, 0x6E00, 0x6A86, 0x6B00}


class PcscFailure(Exception):
    """A PC/SC call failed; ``missing`` when it means no pcscd or no reader."""

    def __init__(self, what: str, hresult: int):
        self.hresult = hresult
        self.missing = hresult in _DAEMON_GONE or hresult in _READER_GONE
        hint = " - pcscd stopped or restarted?" if hresult in _DAEMON_GONE and "pcscd" not in what else ""
        super().__init__(f"{what}: {scard.SCardGetErrorMessage(hresult).strip()} (0x{hresult & 0xFFFFFFFF:08X}){hint}")


def pick_reader(readers: list[str], want: str) -> str | None:
    """The first reader whose name contains ``want`` (any case); empty: the first reader."""
    for name in readers:
        if want.lower() in name.lower():
            return name
    return None


class CardReader:
    """Reports each card tapped on one PC/SC reader, once, by UID.

    ``on_card(uid)`` and ``on_error(message)`` run on the reader's thread,
    so they should be quick (put the UID on a queue). ``on_error`` is for a
    tap that failed (the user should hear it); trouble with pcscd or the
    reader shows in ``status`` and ``last_error`` instead.
    """

    def __init__(self, reader: str = "", *, on_card: Callable[[str], None], debounce_s: float = 2.0,
                 on_error: Callable[[str], None] | None = None):
        self.reader = reader
        self.on_card = on_card
        self.on_error = on_error
        self.debounce_s = debounce_s
        self.reader_name: str | None = None
        self.last_error: str | None = None
        self.taps = 0
        self.read_errors = 0
        self._missing = True           # until the reader has been found
        self._pcsc_errors_in_row = 0
        self._read_errors_in_row = 0
        self._last_seen: dict[str, float] = {}  # UID -> monotonic time last read
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx_lock = threading.Lock()  # stop() cancels the context the thread may be releasing
        self._hcontext: int | None = None
        self._logged: str | None = None  # last trouble logged, so it is logged once
        self._watching = False

    @classmethod
    def from_settings(cls, settings, on_card: Callable[[str], None],
                      on_error: Callable[[str], None] | None = None) -> "CardReader | None":
        """The reader of the ``card`` settings section; None for backend "none".

        "memory" is the in-process reader of the door's logic tests
        (``memorycard``), as gpiozero's MockFactory is for the pins.
        """
        card = settings.card
        if card.backend == "none":
            return None
        if card.backend == "memory":
            from .memorycard import MemoryCardReader

            cls = MemoryCardReader
        elif card.backend != "pcsc":
            raise ValueError(f"card.backend must be 'pcsc', 'memory' or 'none', not {card.backend!r}")
        return cls(card.reader, on_card=on_card, debounce_s=card.debounce_s, on_error=on_error)

    # -- public ------------------------------------------------------------

    @property
    def status(self) -> str:
        if self._missing:
            return MISSING
        if max(self._pcsc_errors_in_row, self._read_errors_in_row) >= ERROR_AFTER:
            return ERROR
        return OK

    @property
    def running(self) -> bool:
        """The reader thread is alive (it only ends on stop())."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "CardReader":
        if self.running:
            return self
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="cardreader", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        with self._ctx_lock:
            if self._hcontext is not None:
                scard.SCardCancel(self._hcontext)  # wakes a wait in progress at once
        if self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("card reader thread still busy after %.1f s", timeout)

    def __enter__(self) -> "CardReader":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the supervised loop -------------------------------------------------

    def _run(self) -> None:
        delay = BACKOFF_MIN_S
        while not self._stopping.is_set():
            self._watching = False
            try:
                self._session()
            except PcscFailure as exc:
                self._failed(str(exc), exc.missing)
            except Exception as exc:  # a bug or a surprise: log it, never die
                log.exception("card reader loop failed")
                self._failed(f"unexpected error: {exc!r}", False)
            finally:
                self._release()
            if self._stopping.is_set():
                break
            if self._watching:
                delay = BACKOFF_MIN_S  # a fresh failure after good times: retry soon
            self._stopping.wait(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _session(self) -> None:
        """One context's life: find the reader, then watch it until a failure.

        A context is never reused after a failure: pcsc-lite ties it to one
        connection to one pcscd, and a restarted pcscd does not know it.
        """
        hresult, hcontext = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise PcscFailure("pcscd not reachable", hresult)
        with self._ctx_lock:
            self._hcontext = hcontext
        if self._stopping.is_set():
            return
        name = self._find_reader(hcontext)
        if name is None:
            return
        if name != self.reader_name or self._missing or self._logged:
            log.info("card reader: watching %r", name)
        self.reader_name = name
        self._missing = False
        self._logged = None
        self._watching = True
        self._watch(hcontext, name)

    def _release(self) -> None:
        with self._ctx_lock:
            if self._hcontext is not None:
                scard.SCardReleaseContext(self._hcontext)
                self._hcontext = None

    def _failed(self, message: str, missing: bool) -> None:
        self.last_error = message
        if missing:
            self._missing = True
        else:
            self._pcsc_errors_in_row += 1
        if message != self._logged:  # once per new trouble, not every backoff round
            log.warning("card reader: %s; retrying", message)
            self._logged = message

    def _find_reader(self, hcontext: int) -> str | None:
        """Wait, on this context, until a reader matching ``self.reader`` is listed.

        A missing reader is not a broken context, so rather than a new one
        every few seconds, wait on the PnP pseudo-reader: pcscd wakes it the
        moment a reader is plugged in.
        """
        pnp_state = scard.SCARD_STATE_UNAWARE
        while not self._stopping.is_set():
            hresult, readers = scard.SCardListReaders(hcontext, [])
            if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
                readers = []
            elif hresult != scard.SCARD_S_SUCCESS:
                raise PcscFailure("cannot list readers", hresult)
            name = pick_reader(readers, self.reader)
            if name is not None:
                return name
            self._missing = True
            message = (f"no reader matching {self.reader!r}; readers: {', '.join(readers)}" if readers and self.reader
                       else "no card reader connected")
            self.last_error = message
            if message != self._logged:
                log.warning("card reader: %s", message)
                self._logged = message
            hresult, states = scard.SCardGetStatusChange(hcontext, WAIT_MS, [(PNP, pnp_state)])
            if hresult == scard.SCARD_S_SUCCESS:
                pnp_state = states[0][1] & ~scard.SCARD_STATE_CHANGED
            elif hresult not in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
                raise PcscFailure("waiting for a reader", hresult)
            self._stopping.wait(0.05)  # never a busy loop, whatever PnP answers
        return None

    def _watch(self, hcontext: int, name: str) -> None:
        state = scard.SCARD_STATE_UNAWARE
        first = True
        while not self._stopping.is_set():
            hresult, states = scard.SCardGetStatusChange(hcontext, WAIT_MS, [(name, state)])
            if hresult == scard.SCARD_E_TIMEOUT:
                self._pcsc_errors_in_row = 0
                continue
            if hresult == scard.SCARD_E_CANCELLED and self._stopping.is_set():
                return
            if hresult != scard.SCARD_S_SUCCESS:
                raise PcscFailure(f"waiting for a card on {name!r}", hresult)
            self._pcsc_errors_in_row = 0
            event = states[0][1]
            if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
                raise PcscFailure(f"reader {name!r} gone", scard.SCARD_E_READER_UNAVAILABLE)
            present = bool(event & scard.SCARD_STATE_PRESENT)
            new_card = present and not first and (
                not state & scard.SCARD_STATE_PRESENT or (event >> 16) != (state >> 16)
            )
            if first and present:
                # newcardonly: a card lying on the reader at start (or when
                # we come back after a pcscd restart) is not a tap.
                log.info("card reader: a card is already on %r; lift it and tap again to read it", name)
            first = False
            state = event & ~scard.SCARD_STATE_CHANGED
            if not new_card:
                continue
            if event & scard.SCARD_STATE_MUTE:
                self._read_failed("card does not answer (mute); tap again", counts=False)
                continue
            self._read_card(hcontext, name, state)

    # -- one card ------------------------------------------------------------

    def _read_card(self, hcontext: int, name: str, state: int) -> None:
        hresult, hcard, protocol = scard.SCardConnect(
            hcontext, name, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if hresult in _CARD_GONE:
            self._read_failed("card removed during read (gone before connect); tap again", counts=False)
            return
        if hresult != scard.SCARD_S_SUCCESS:
            self._transmit_failed(hcontext, name, state, PcscFailure("cannot connect to the card", hresult))
            return
        try:
            hresult, response = scard.SCardTransmit(hcard, protocol, GET_UID)
        finally:
            # LEAVE_CARD: the reader powers the field down by itself; an
            # unpower or reset here only costs time on a card that is leaving.
            scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)
        if hresult != scard.SCARD_S_SUCCESS or len(response) < 2:
            # vpcd answers a pulled card's APDU with zero bytes and success.
            failure = PcscFailure("Get UID", hresult) if hresult else None
            self._transmit_failed(hcontext, name, state, failure)
            return
        data, sw = response[:-2], response[-2] << 8 | response[-1]
        if sw != 0x9000:
            what = "does not support Get UID" if sw in _NO_GET_UID else "refused Get UID"
            self._read_failed(f"card {what} (SW {sw:04X})", counts=False)
            return
        if not data:
            self._read_failed("card answered Get UID with no UID", counts=False)
            return
        self._read_errors_in_row = 0
        self._tapped(toHexString(list(data), PACK))

    def _transmit_failed(self, hcontext: int, name: str, state: int, failure: PcscFailure | None) -> None:
        """Connect or transmit failed: pcscd gone, card pulled, or a reader fault."""
        if failure is not None and failure.hresult in _DAEMON_GONE | _READER_GONE:
            raise failure
        why = str(failure) if failure else "no answer to Get UID"
        if (failure is not None and failure.hresult in _CARD_GONE) or self._card_left(hcontext, name, state):
            self._read_failed(f"card removed during read ({why}); tap again", counts=False)
        else:
            self._read_failed(f"card read failed: {why}", counts=True)

    def _card_left(self, hcontext: int, name: str, state: int) -> bool:
        """Did the card leave the reader (now or within REMOVAL_GRACE_S)?

        A card pulled mid-read gives no telling error code: vpcd, for one,
        answers the APDU with zero bytes. The reader state tells, once pcscd
        has polled it: empty, or a bumped event counter.
        """
        deadline = time.monotonic() + REMOVAL_GRACE_S
        current = state
        while (left := deadline - time.monotonic()) > 0:
            hresult, states = scard.SCardGetStatusChange(hcontext, max(1, int(left * 1000)), [(name, current)])
            if hresult != scard.SCARD_S_SUCCESS:
                return False
            event = states[0][1]
            if not event & scard.SCARD_STATE_PRESENT or (event >> 16) != (state >> 16):
                return True
            current = event & ~scard.SCARD_STATE_CHANGED  # e.g. "in use" changed by our own connect
        return False

    def _read_failed(self, message: str, counts: bool) -> None:
        """A tap that gave no UID: the user taps again, and gets feedback via on_error."""
        self.read_errors += 1
        self.last_error = message
        if counts:
            self._read_errors_in_row += 1
        log.warning("card reader: %s", message)
        if self.on_error:
            try:
                self.on_error(message)
            except Exception:
                log.exception("on_error callback failed")

    def _tapped(self, uid: str) -> None:
        now = time.monotonic()
        last = self._last_seen.get(uid)
        self._last_seen[uid] = now
        for old in [u for u, t in self._last_seen.items() if now - t >= self.debounce_s]:
            del self._last_seen[old]
        if last is not None and now - last < self.debounce_s:
            log.debug("card %s again within %.1f s: same tap", uid, self.debounce_s)
            return
        self.taps += 1
        log.info("card tapped: %s", uid)
        try:
            self.on_card(uid)
        except Exception:
            log.exception("on_card callback failed for card %s", uid)


# -- selftest ------------------------------------------------------------------

PCSCD_FIX = "apt install pcscd; systemctl enable --now pcscd.socket"
NFC_MODULES = ("pn533_usb", "pn533", "nfc")
NFC_FIX = "echo 'blacklist pn533_usb' > /etc/modprobe.d/congso-nfc.conf; rmmod pn533_usb pn533 nfc"


def check(settings, proc_modules: str | Path = "/proc/modules") -> list[CheckResult]:
    """``congso selftest`` lines: pcscd, the reader, and no kernel NFC driver stealing it."""
    card = settings.card
    if card.backend == "none":
        return [CheckResult("card reader", True, "none fitted (card.backend = none)")]
    results = []
    hresult, hcontext = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        why = scard.SCardGetErrorMessage(hresult).strip()
        results.append(CheckResult("pcscd", False, f"not reachable: {why}", PCSCD_FIX))
        results.append(CheckResult("card reader", False, "cannot list readers without pcscd", PCSCD_FIX))
    else:
        try:
            hresult, readers = scard.SCardListReaders(hcontext, [])
        finally:
            scard.SCardReleaseContext(hcontext)
        readers = list(readers) if hresult == scard.SCARD_S_SUCCESS else []
        results.append(CheckResult("pcscd", True, "reachable"))
        name = pick_reader(readers, card.reader)
        if name:
            results.append(CheckResult("card reader", True, name))
        elif readers:
            results.append(CheckResult(
                "card reader", False, f"no reader matches card.reader = {card.reader!r}",
                f"set card.reader to part of one of the readers found: {', '.join(readers)}"))
        else:
            results.append(CheckResult("card reader", False, "pcscd lists no reader",
                                       "plug the reader in; check `lsusb`"))
    results.append(_check_nfc_modules(Path(proc_modules)))
    return results


def _check_nfc_modules(proc_modules: Path) -> CheckResult:
    """The kernel's NFC drivers claim PN533-based readers (ACR122U) before pcscd's CCID driver can."""
    try:
        loaded = {line.split()[0] for line in proc_modules.read_text().splitlines() if line.strip()}
    except OSError as exc:
        return CheckResult("NFC kernel modules", True, f"not checked ({exc})")
    found = [m for m in NFC_MODULES if m in loaded]
    if found:
        return CheckResult("NFC kernel modules", False, f"loaded: {', '.join(found)} (they take the reader from pcscd)",
                           NFC_FIX)
    return CheckResult("NFC kernel modules", True, "pn533/nfc not loaded")
