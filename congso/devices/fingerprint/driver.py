"""``FingerprintModule``: the driver for R30x / ZFM / AS608 / R503 modules.

What the common drivers get wrong and this one does not:

- every command has a monotonic deadline: a dead or unpowered module gives
  ``ModuleTimeout``, never a hang;
- every packet's sum, length, PID and address is checked; noise and the
  power-on ``0x55`` are skipped, a corrupt reply is a ``BadFrame`` and the
  command is tried once more (for commands that are safe to repeat);
- a confirmation code other than OK is a ``SensorError`` carrying the code
  and its meaning;
- one long-lived port, its input cleared before each command, re-opened
  with a fresh handshake after an I/O error (module unplugged and back).

All public methods are thread-safe: one lock serialises the conversation.
"""

from __future__ import annotations

import collections
import logging
import struct
import termios
import threading
import time
from dataclasses import dataclass
from typing import Callable

import serial

from .. import ERROR, MISSING, OK
from . import codec
from .parser import FrameParser
from .errors import (
    LIBRARY_FULL,
    NO_FINGER,
    NOT_FOUND,
    BadFrame,
    ModuleTimeout,
    PortError,
    SensorError,
)

log = logging.getLogger(__name__)

# After a corrupt packet, how long to keep listening for a good one (a
# corrupt header followed by the real reply) before giving up on the command.
BAD_FRAME_GRACE_S = 0.15
# Between two GenImg while waiting for a finger. GenImg itself takes
# 50-200 ms on a real module, so this keeps the line busy at most ~80%.
FINGER_POLL_S = 0.05
# After a timeout the module may still answer late: wait for this much
# quiet on the line before the next command, so the late reply is not taken
# for the next command's.
DRAIN_QUIET_S = 0.2
# Port failures: pyserial's, the OS's, and termios' own (not an OSError).
_PORT_ERRORS = (serial.SerialException, OSError, termios.error)
# Commands that write flash or scan the library take longer than the rest.
SLOW_COMMANDS = {codec.EMPTY: 5.0, codec.SEARCH: 3.0, codec.STORE: 3.0, codec.DELETE_CHAR: 3.0}
# Safe to send twice: they change nothing or set the same state again.
REPEATABLE = {
    codec.GEN_IMG, codec.IMG2TZ, codec.MATCH, codec.SEARCH, codec.REG_MODEL, codec.LOAD_CHAR,
    codec.READ_SYS_PARA, codec.VFY_PWD, codec.TEMPLATE_NUM, codec.READ_INDEX_TABLE, codec.AURA_LED,
    codec.STORE, codec.DELETE_CHAR, codec.EMPTY, codec.SET_SYS_PARA,
}


@dataclass(frozen=True)
class SystemParameters:
    """What ReadSysPara reports."""

    status: int
    system_id: int
    library_size: int
    security_level: int
    address: int
    packet_size: int  # bytes per data packet
    baud: int

    @classmethod
    def decode(cls, data: bytes) -> "SystemParameters":
        if len(data) < 16:
            raise BadFrame(f"ReadSysPara returned {len(data)} bytes, expected 16")
        status, system_id, library, security, address, size_code, baud_n = struct.unpack(">HHHHIHH", data[:16])
        packet_size = codec.PACKET_SIZES[size_code] if size_code < len(codec.PACKET_SIZES) else 128
        return cls(status, system_id, library, security, address, packet_size, baud_n * 9600)

    def encode(self) -> bytes:
        return struct.pack(
            ">HHHHIHH",
            self.status, self.system_id, self.library_size, self.security_level, self.address,
            codec.PACKET_SIZES.index(self.packet_size), self.baud // 9600,
        )


@dataclass(frozen=True)
class Match:
    slot: int
    score: int


class FingerprintModule:
    """One module on one serial port.

    ``port`` is a device path (``/dev/serial0``, a pty), a pyserial URL, or an
    already open serial object. Nothing is opened until ``open()``.
    """

    def __init__(
        self,
        port: str | serial.SerialBase,
        *,
        baud: int = 57600,
        address: int = codec.DEFAULT_ADDRESS,
        password: int = 0,
        timeout_s: float = 2.0,
    ):
        self.port = port
        self.baud = baud
        self.address = address
        self.password = password
        self.timeout_s = timeout_s
        self.params: SystemParameters | None = None
        self.has_aura_led: bool | None = None  # known after the first try
        self._ser: serial.SerialBase | None = port if not isinstance(port, str) else None
        self._lock = threading.RLock()
        self._frames: collections.deque[codec.Frame] = collections.deque()
        self._parser = None
        self._status = MISSING
        self._drain_first = False
        self.last_error: str | None = None
        # Counters for health and the bench.
        self.commands = 0
        self.timeouts = 0
        self.bad_frames = 0

    @classmethod
    def from_settings(cls, settings, port: str | None = None) -> "FingerprintModule":
        fp = settings.fingerprint
        return cls(port or fp.port, baud=fp.baud, address=fp.address, password=fp.password, timeout_s=fp.timeout_s)

    # -- connection --------------------------------------------------------------
    @property
    def status(self) -> str:
        return self._status

    @property
    def noise_bytes(self) -> int:
        return self._parser.skipped if self._parser else 0

    def open(self) -> SystemParameters:
        """Open the port and handshake: verify the password, read the parameters."""
        with self._lock:
            self._connect()
            log.info(
                "fingerprint module on %s: library %d, packet %d bytes, %d baud, security %d",
                self._port_name(), self.params.library_size, self.params.packet_size,
                self.params.baud, self.params.security_level,
            )
            return self.params

    def close(self) -> None:
        with self._lock:
            if self._ser is not None and isinstance(self.port, str):
                try:
                    self._ser.close()
                except Exception:
                    pass
                self._ser = None
            self._status = MISSING

    def __enter__(self) -> "FingerprintModule":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _port_name(self) -> str:
        return self.port if isinstance(self.port, str) else getattr(self.port, "name", "port")

    def _open_port(self) -> None:
        try:
            self._ser = serial.serial_for_url(
                self.port, baudrate=self.baud, timeout=0.05, write_timeout=self.timeout_s,
                **({"exclusive": True} if self.port.startswith("/dev/") else {}),
            )
        except (serial.SerialException, OSError, ValueError) as e:
            self._fail(MISSING, f"cannot open {self.port}: {e}")
            raise PortError(self.last_error) from e

    def _fail(self, status: str, message: str) -> None:
        self._status = status
        self.last_error = message

    # -- one command ----------------------------------------------------------------
    def command(self, instruction: int, args: bytes = b"", *, ok: tuple[int, ...] = (0,), timeout_s: float | None = None) -> tuple[int, bytes]:
        """Send one command, return (confirmation code, data after the code).

        Codes outside ``ok`` raise ``SensorError``. A corrupt reply to a
        repeatable command is retried once.
        """
        with self._lock:
            attempts = 2 if instruction in REPEATABLE else 1
            for attempt in range(attempts):
                try:
                    frame = self._exchange(instruction, args, timeout_s)
                    break
                except BadFrame as e:
                    if attempt + 1 == attempts:
                        raise
                    log.warning("%s; trying once more", e)
            code, data = frame.payload[0], frame.payload[1:]
            if code not in ok:
                raise SensorError(code, codec.INSTRUCTIONS.get(instruction, f"0x{instruction:02X}"))
            return code, data

    def _exchange(self, instruction: int, args: bytes, timeout_s: float | None) -> codec.Frame:
        ser = self._port()
        name = codec.INSTRUCTIONS.get(instruction, f"0x{instruction:02X}")
        if timeout_s is None:
            timeout_s = max(self.timeout_s, SLOW_COMMANDS.get(instruction, 0.0))
        self.commands += 1
        try:
            # Stale bytes (a late reply to a timed-out command) must not be
            # taken for the answer to this one.
            if self._drain_first:
                self._drain(ser)
            ser.reset_input_buffer()
            self._frames.clear()
            self._parser = _new_parser(self.address, self._parser)
            ser.write(codec.command(instruction, args, self.address))
        except _PORT_ERRORS as e:
            self._lost(e)
        return self._read_ack(name, time.monotonic() + timeout_s)

    def _drain(self, ser: serial.SerialBase) -> None:
        """Read and drop bytes until the line has been quiet for DRAIN_QUIET_S."""
        self._drain_first = False
        deadline = time.monotonic() + self.timeout_s
        ser.timeout = DRAIN_QUIET_S
        while time.monotonic() < deadline and ser.read(4096):
            pass

    def _port(self) -> serial.SerialBase:
        if self._ser is None or not self._ser.is_open:
            if not isinstance(self.port, str):
                raise PortError("the serial port was closed")
            # Unplugged and back, or never opened: a fresh handshake first.
            self._connect()
        return self._ser

    def _connect(self) -> None:
        if self._ser is None or not self._ser.is_open:
            self._open_port()
        self._parser = _new_parser(self.address, self._parser)
        try:
            self.verify_password(self.password)
            self.params = self.read_system_parameters()
        except SensorError as e:
            self._fail(ERROR, str(e))
            raise

    def _lost(self, e: Exception) -> None:
        message = f"serial port {self._port_name()} failed: {e}"
        try:
            if isinstance(self.port, str) and self._ser is not None:
                self._ser.close()
        except Exception:
            pass
        if isinstance(self.port, str):
            self._ser = None
        self._fail(MISSING, message)
        raise PortError(message) from e

    def _read_frame(self, what: str, deadline: float) -> codec.Frame:
        """The next good frame before ``deadline``; typed errors otherwise."""
        ser = self._ser
        bad: BadFrame | None = None
        while not self._frames:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if bad is not None:
                    self.bad_frames += 1
                    self._fail(ERROR, f"{what}: {bad}")
                    raise bad
                self.timeouts += 1
                self._drain_first = True
                self._fail(MISSING, f"{what}: no reply from the module within the deadline")
                raise ModuleTimeout(self.last_error)
            try:
                ser.timeout = min(remaining, 0.05)
                chunk = ser.read(max(1, ser.in_waiting))
            except _PORT_ERRORS + (TypeError,) as e:
                self._lost(e)
            for item in self._parser.feed(chunk):
                if isinstance(item, BadFrame):
                    bad = BadFrame(f"{what}: {item}")
                    deadline = min(deadline, time.monotonic() + BAD_FRAME_GRACE_S)
                else:
                    self._frames.append(item)
        return self._frames.popleft()

    def _read_ack(self, what: str, deadline: float) -> codec.Frame:
        while True:
            frame = self._read_frame(what, deadline)
            if frame.pid == codec.PID_ACK:
                self._status = OK
                return frame
            # A data packet left over or our own command echoed back.
            log.debug("%s: skipping a %s packet while waiting for the ack", what, codec.PIDS[frame.pid])

    # -- commands (datasheet names in the docstrings) ------------------------------
    def verify_password(self, password: int) -> None:
        """VfyPwd 0x13: required by modules with a password before anything else."""
        self.command(codec.VFY_PWD, struct.pack(">I", password))

    def read_system_parameters(self) -> SystemParameters:
        """ReadSysPara 0x0F: library size, packet size, baud."""
        _, data = self.command(codec.READ_SYS_PARA)
        return SystemParameters.decode(data)

    def template_count(self) -> int:
        """TemplateNum 0x1D: how many slots hold a template."""
        _, data = self.command(codec.TEMPLATE_NUM)
        return _u16(data, "TemplateNum")

    def read_index_table(self, page: int) -> set[int]:
        """ReadIndexTable 0x1F: the used slots among ``page*256 .. page*256+255``."""
        _, data = self.command(codec.READ_INDEX_TABLE, bytes([page]))
        used = set()
        for i, byte in enumerate(data[:32]):
            for bit in range(8):
                if byte >> bit & 1:
                    used.add(page * 256 + i * 8 + bit)
        return used

    def gen_img(self) -> bool:
        """GenImg 0x01: capture an image; False when no finger is on the sensor."""
        code, _ = self.command(codec.GEN_IMG, ok=(0, NO_FINGER))
        return code == 0

    def img2tz(self, buffer: int) -> None:
        """Img2Tz 0x02: turn the image into a character file in buffer 1 or 2."""
        self.command(codec.IMG2TZ, bytes([buffer]))

    def reg_model(self) -> None:
        """RegModel 0x05: combine buffers 1 and 2 into a model (in both)."""
        self.command(codec.REG_MODEL)

    def store(self, buffer: int, slot: int) -> None:
        """Store 0x06: write the buffer's template to a library slot."""
        self.command(codec.STORE, struct.pack(">BH", buffer, slot))

    def search(self, buffer: int, start: int, count: int) -> Match | None:
        """Search 0x04: the library slot matching the buffer, or None."""
        code, data = self.command(codec.SEARCH, struct.pack(">BHH", buffer, start, count), ok=(0, NOT_FOUND))
        if code == NOT_FOUND:
            return None
        if len(data) < 4:
            raise BadFrame(f"Search returned {len(data)} bytes, expected 4")
        slot, score = struct.unpack(">HH", data[:4])
        return Match(slot, score)

    def match(self) -> int | None:
        """Match 0x03: compare buffers 1 and 2; the score, or None if they differ."""
        code, data = self.command(codec.MATCH, ok=(0, 0x08))
        return _u16(data, "Match") if code == 0 else None

    def load_char(self, buffer: int, slot: int) -> None:
        """LoadChar 0x07: read a library slot into a buffer."""
        self.command(codec.LOAD_CHAR, struct.pack(">BH", buffer, slot))

    def up_char(self, buffer: int) -> bytes:
        """UpChar 0x08: upload a buffer's template, in data packets, to us."""
        with self._lock:
            self.command(codec.UP_CHAR, bytes([buffer]))
            data = bytearray()
            while True:
                frame = self._read_frame("UpChar data", time.monotonic() + self.timeout_s)
                if frame.pid in (codec.PID_DATA, codec.PID_END_OF_DATA):
                    data += frame.payload
                    if frame.pid == codec.PID_END_OF_DATA:
                        return bytes(data)
                else:
                    raise BadFrame(f"UpChar: a {codec.PIDS[frame.pid]} packet in the data phase")

    def down_char(self, buffer: int, template: bytes) -> None:
        """DownChar 0x09: download a template into a buffer, in data packets."""
        with self._lock:
            size = self.params.packet_size if self.params else 128
            self.command(codec.DOWN_CHAR, bytes([buffer]))
            try:
                for packet in codec.data_packets(template, size, self.address):
                    self._ser.write(packet)
                self._ser.flush()
            except _PORT_ERRORS as e:
                self._lost(e)

    def delete_char(self, slot: int, count: int = 1) -> None:
        """DeleteChar 0x0C: clear ``count`` slots from ``slot``."""
        self.command(codec.DELETE_CHAR, struct.pack(">HH", slot, count))

    def empty(self) -> None:
        """Empty 0x0D: clear the whole library."""
        self.command(codec.EMPTY)

    def set_sys_para(self, param: int, value: int) -> None:
        """SetSysPara 0x0E: baud (4), security level (5) or packet size (6)."""
        self.command(codec.SET_SYS_PARA, bytes([param, value]))
        if self.params is not None:
            self.params = self.read_system_parameters()

    def aura_led(self, control: int, speed: int, colour: int, count: int = 0) -> bool:
        """AuraLedConfig 0x35 (R503): ring LED; False on modules without one."""
        if self.has_aura_led is False:
            return False
        try:
            self.command(codec.AURA_LED, bytes([control, speed, colour, count]))
        except SensorError as e:
            log.info("no ring LED on this module (%s)", e)
            self.has_aura_led = False
            return False
        self.has_aura_led = True
        return True

    # -- operations ------------------------------------------------------------------
    def library_size(self) -> int:
        if self.params is None:
            self.params = self.read_system_parameters()
        return self.params.library_size

    def used_slots(self) -> set[int]:
        with self._lock:
            used: set[int] = set()
            for page in range((self.library_size() + 255) // 256):
                used |= self.read_index_table(page)
            return {s for s in used if s < self.library_size()}

    def free_slot(self) -> int:
        used = self.used_slots()
        for slot in range(self.library_size()):
            if slot not in used:
                return slot
        raise SensorError(LIBRARY_FULL, "Enroll")

    def capture(self, buffer: int = 1, wait_s: float = 0.0) -> bool:
        """Wait up to ``wait_s`` for a finger, then make its character file in ``buffer``.

        False when no finger came. A poor image raises ``SensorError``.
        """
        deadline = time.monotonic() + wait_s
        with self._lock:
            while not self.gen_img():
                if time.monotonic() >= deadline:
                    return False
                time.sleep(FINGER_POLL_S)
            self.img2tz(buffer)
            return True

    def search_library(self, buffer: int = 1) -> Match | None:
        return self.search(buffer, 0, self.library_size())

    def identify(self, wait_s: float = 0.0) -> Match | None:
        """Capture a finger and search the whole library: the match, or None.

        Raises ``SensorError`` with code 0x02 when no finger came in ``wait_s``.
        """
        with self._lock:
            if not self.capture(1, wait_s):
                raise SensorError(NO_FINGER, "Identify")
            return self.search_library(1)

    def wait_lifted(self, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        with self._lock:
            while self.gen_img():
                if time.monotonic() >= deadline:
                    return False
                time.sleep(FINGER_POLL_S)
            return True

    def enroll(self, slot: int | None = None, *, wait_s: float = 15.0, on_step: Callable[[str], None] | None = None, allow_duplicate: bool = False) -> int:
        """Two captures of one finger, combined and stored; returns the slot.

        ``on_step`` is told "place", "lift", "place_again" and "stored" so the
        door can guide the person with its LED and buzzer. Each step waits
        at most ``wait_s``; then ``SensorError`` 0x02 (no finger). A finger
        already in the library raises ``SensorError`` 0x27 unless
        ``allow_duplicate``.
        """
        step = on_step or (lambda name: None)
        with self._lock:
            if slot is None:
                slot = self.free_slot()
            elif not 0 <= slot < self.library_size():
                raise SensorError(0x0B, "Enroll")
            step("place")
            if not self.capture(1, wait_s):
                raise SensorError(NO_FINGER, "Enroll")
            if not allow_duplicate:
                known = self.search_library(1)
                if known is not None:
                    raise SensorError(0x27, "Enroll", slot=known.slot)
            step("lift")
            if not self.wait_lifted(wait_s):
                raise SensorError(0x26, "Enroll (finger not lifted)")
            step("place_again")
            if not self.capture(2, wait_s):
                raise SensorError(NO_FINGER, "Enroll")
            self.reg_model()
            self.store(1, slot)
            step("stored")
            return slot

    def delete(self, slot: int) -> None:
        self.delete_char(slot, 1)

    def export_template(self, slot: int) -> bytes:
        """The template in ``slot``, to carry the finger to another door."""
        with self._lock:
            self.load_char(1, slot)
            return self.up_char(1)

    def import_template(self, slot: int, template: bytes) -> None:
        """Store a template exported from another module into ``slot``."""
        with self._lock:
            self.down_char(1, template)
            self.store(1, slot)


def _new_parser(address: int, old: FrameParser | None = None) -> FrameParser:
    parser = FrameParser(address)
    if old is not None:
        parser.skipped = old.skipped  # keep the noise count across commands
    return parser


def _u16(data: bytes, what: str) -> int:
    if len(data) < 2:
        raise BadFrame(f"{what} returned {len(data)} bytes, expected 2")
    return struct.unpack(">H", data[:2])[0]
