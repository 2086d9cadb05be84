"""A contactless card in pcscd's virtual reader (vsmartcard's vpcd driver).

vpcd makes pcscd show readers ("Virtual PCD 00 00", "... 00 01") that
listen on TCP 35963, 35964; a program that connects to such a port *is* the
card in that reader: connecting inserts it, closing the socket removes it.
So the demo and the tests read a card through the same pcscd and pyscard
code path as a real ACR122U, with no mock anywhere.

The vpcd socket protocol, both ways: a 2-byte big-endian length, then that
many bytes. From vpcd, a 1-byte message is a control code (power off, power
on, reset, "send your ATR"); anything longer is a command APDU, answered
with a response APDU. pcscd asks for the ATR on each presence poll (about
every 0.4 s), which is also how it notices a closed socket.

The card answers what a PC/SC part 3 reader answers for a MIFARE Classic:
``FF CA 00 00 Le`` (Get Data: UID). Fault switches make it misbehave the
ways real cards do: pulled off the reader mid-read, or refusing Get UID.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963  # vpcd's first slot; the second is 35964

# vpcd control codes (vpcd.h)
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0x00, 0x01, 0x02, 0x04

SW_OK = 0x9000
SW_END_OF_DATA = 0x6282       # Le longer than the UID: the UID, and this
SW_WRONG_LENGTH = 0x6700
SW_WRONG_LE = 0x6C00          # | exact length
SW_FUNC_NOT_SUPPORTED = 0x6A81
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00


def contactless_atr(standard: int = 0x03, card_name: int = 0x0001) -> bytes:
    """The ATR a PC/SC part 3 reader builds for a storage card.

    ``standard`` 0x03 is ISO 14443 A part 3, ``card_name`` 0x0001 MIFARE
    Classic 1K (PC/SC part 3 supplemental document). The last byte is TCK,
    the XOR of every byte after TS.
    """
    body = bytes([0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06,
                  standard, card_name >> 8, card_name & 0xFF, 0x00, 0x00, 0x00, 0x00])
    tck = 0
    for b in body:
        tck ^= b
    return bytes([0x3B]) + body + bytes([tck])


MIFARE_CLASSIC_1K_ATR = contactless_atr()  # 3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A


def parse_uid(uid: str) -> bytes:
    """"04A1B2C3D4E5F6", "04 a1 b2 ..." or "04:A1:..." -> bytes; 4, 7 or 10 bytes (ISO 14443 A)."""
    raw = bytes.fromhex(uid.replace(":", " "))
    if len(raw) not in (4, 7, 10):
        raise ValueError(f"a UID has 4, 7 or 10 bytes, not {len(raw)}: {uid!r}")
    return raw


class VirtualCard:
    """One card for one vpcd slot; insert and remove it as often as you like.

    Fault switches, read on each command so they can be flipped while the
    card is inserted:

    - ``remove_on_uid_read``: on Get UID, close the socket instead of
      answering, as a card pulled off the reader between connect and reply;
    - ``uid_sw``: answer Get UID with this status word and no data when it
      is not 0x9000 (0x6A81: a card that has no UID to give);
    - ``uid_reply``: answer Get UID with these raw bytes instead (b"\\x90": a
      garbled reply from a card that stays on the reader).
    """

    def __init__(self, uid: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 atr: bytes = MIFARE_CLASSIC_1K_ATR):
        self.uid = parse_uid(uid)
        self.host = host
        self.port = port
        self.atr = bytes(atr)
        self.remove_on_uid_read = False
        self.uid_sw = SW_OK
        self.uid_reply: bytes | None = None
        self.uid_reads = 0      # Get UID commands received, answered or not
        self.powered = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._taken_in = threading.Event()  # pcscd has powered the card up
        self._lock = threading.Lock()

    # -- insert / remove ---------------------------------------------------

    @property
    def is_inserted(self) -> bool:
        return self._sock is not None

    def insert(self, uid: str | None = None, timeout: float = 5.0) -> None:
        """Put the card on the reader; returns once pcscd has taken it in.

        That is the first power-on: pcscd powers every card it finds up to
        read its ATR, and publishes the reader state right after. A TCP
        connect alone says nothing (the kernel completes it into vpcd's
        listen backlog before vpcd accepts), nor does vpcd's first ATR
        request (its presence poll, ~90 ms before pcscd has the card).
        Connection refused (pcscd still starting) is retried until
        ``timeout``.
        """
        if self.is_inserted:
            raise RuntimeError("card already inserted; remove() it first")
        if uid is not None:
            self.uid = parse_uid(uid)
        if self._thread is not None:  # the last insertion's thread, ended by vpcd: let it finish
            self._thread.join(2.0)
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=max(0.1, deadline - time.monotonic()))
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"vpcd at {self.host}:{self.port} not reachable ({exc}); is pcscd running with the vpcd driver?") from None
                time.sleep(0.05)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._taken_in.clear()
        with self._lock:
            self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(sock,), name=f"vpcd-card-{self.port}", daemon=True)
        self._thread.start()
        if not self._taken_in.wait(max(0.0, deadline - time.monotonic())):
            self.remove()
            raise TimeoutError(f"vpcd at {self.host}:{self.port} accepted no card within {timeout} s; "
                               "another card already in that slot, or pcscd not polling it?")
        if not self.is_inserted:  # _serve ended first: it sets the event to wake us
            raise ConnectionError(f"vpcd at {self.host}:{self.port} dropped the card before pcscd took it in")
        log.debug("card %s inserted at %s:%d", self.uid.hex().upper(), self.host, self.port)

    def remove(self) -> None:
        """Take the card off the reader: close the socket.

        pcscd notices on its next presence poll (within about 0.4 s).
        """
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            _close(sock)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self._thread = None
        self.powered = False

    def close(self) -> None:
        self.remove()

    def __enter__(self) -> "VirtualCard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- serving -----------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                msg = _recv_msg(sock)
                if msg is None:
                    log.debug("vpcd closed the connection (pcscd stopped?)")
                    break
                reply = self._handle(msg)
                if reply is _PULL:
                    log.debug("fault: card pulled during Get UID")
                    break
                if reply is not None:
                    sock.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError as exc:
            # remove() closing the socket under us lands here too.
            log.debug("vpcd connection ended: %s", exc)
        finally:
            with self._lock:
                if self._sock is sock:
                    self._sock = None
            _close(sock)
            self.powered = False
            self._taken_in.set()  # an insert() still waiting learns at once

    def _handle(self, msg: bytes) -> bytes | object | None:
        if len(msg) == 1:
            code = msg[0]
            if code == CTRL_ATR:
                return self.atr
            if code in (CTRL_ON, CTRL_RESET):
                self.powered = True
                self._taken_in.set()
            elif code == CTRL_OFF:
                self.powered = False
            else:
                log.warning("unknown vpcd control code 0x%02X", code)
            return None  # vpcd expects no reply to power control
        self._taken_in.set()
        return self.respond(msg)

    def respond(self, apdu: bytes) -> bytes | object:
        """Response APDU for a command APDU (``_PULL``: drop the connection)."""
        if len(apdu) < 4:
            return _sw(SW_WRONG_LENGTH)
        cla, ins, p1, p2 = apdu[:4]
        if cla != 0xFF:
            return _sw(SW_CLA_NOT_SUPPORTED)
        if ins != 0xCA:
            return _sw(SW_INS_NOT_SUPPORTED)
        if len(apdu) > 5:  # a Get Data with a body or an extended Le
            return _sw(SW_WRONG_LENGTH)
        self.uid_reads += 1
        if self.remove_on_uid_read:
            return _PULL
        if self.uid_reply is not None:
            return bytes(self.uid_reply)
        if (p1, p2) != (0x00, 0x00):  # P1=01 (ATS historical bytes): not on MIFARE Classic
            return _sw(SW_FUNC_NOT_SUPPORTED)
        if self.uid_sw != SW_OK:
            return _sw(self.uid_sw)
        le = apdu[4] if len(apdu) == 5 else 0
        if le == 0 or le == len(self.uid):
            return self.uid + _sw(SW_OK)
        if le < len(self.uid):
            return _sw(SW_WRONG_LE | len(self.uid))
        return self.uid + _sw(SW_END_OF_DATA)


_PULL = object()


def _sw(sw: int) -> bytes:
    return struct.pack(">H", sw)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _recv_msg(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, 2)
    if head is None:
        return None
    (size,) = struct.unpack(">H", head)
    return _recv_exact(sock, size) if size else b""


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes our own thread blocked in recv
    except OSError:
        pass
    sock.close()


def tap(uid: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, hold_s: float = 0.5) -> None:
    """One tap: the card on the reader for ``hold_s`` seconds, then off."""
    card = VirtualCard(uid, host, port)
    card.insert()
    try:
        time.sleep(hold_s)
    finally:
        card.remove()
