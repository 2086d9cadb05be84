"""A software fingerprint module on a pseudo-terminal.

It speaks the module's packet protocol on the master side of a pty; the
driver opens the slave path with pyserial exactly as it opens
``/dev/serial0`` on a Pi. It keeps a template library, has a sensor a
finger can be placed on and lifted from, takes about as long as a real
R503 for each command, and produces the faults real wiring produces, on
demand: line noise, corrupt sums, silence, an unknown password, a full
library, a flash error, the cable pulled.

Templates are deterministic in the finger's name, so a finger enrolled on
one emulated door matches the same finger placed on another, and a
template carried from one to the other (UpChar, DownChar) matches too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import select
import struct
import threading
import time
import tty
from typing import Callable

from . import codec
from .parser import FrameParser

log = logging.getLogger(__name__)

TEMPLATE_SIZE = 512  # ZFM/AS608 character file
_MAGIC = b"\x03\x01"  # how ZFM character files start

# Seconds each command takes on a real R503/AS608 (datasheets and
# measurements by hobbyists); multiplied by ``timing``.
TIMINGS = {
    codec.GEN_IMG: 0.15,
    codec.IMG2TZ: 0.30,
    codec.REG_MODEL: 0.10,
    codec.STORE: 0.08,
    codec.MATCH: 0.05,
    codec.LOAD_CHAR: 0.04,
    codec.DELETE_CHAR: 0.05,
    codec.EMPTY: 0.30,
}
NO_FINGER_TIME = 0.05
SEARCH_PER_TEMPLATE = 0.0005


def template_for(finger: str, rng: random.Random | None = None) -> bytes:
    """A character file for ``finger``: an identity part and capture noise."""
    identity = hashlib.sha256(finger.encode()).digest()[:16]
    body = hashlib.shake_256(identity).digest(TEMPLATE_SIZE - 2 - 16 - 16)
    noise = bytes((rng or random).getrandbits(8) for _ in range(16))
    return _MAGIC + identity + body + noise


def _identity(template: bytes | None) -> bytes | None:
    if template is None or len(template) != TEMPLATE_SIZE or not template.startswith(_MAGIC):
        return None
    identity = template[2:18]
    if hashlib.shake_256(identity).digest(TEMPLATE_SIZE - 34) != template[18:-16]:
        return None
    return identity


def _score(a: bytes, b: bytes) -> int:
    return 60 + hashlib.sha256(a + b).digest()[0] % 190


class FingerprintEmulator:
    """One emulated module. ``start()`` returns the pty path to open."""

    def __init__(
        self,
        *,
        library_size: int = 200,
        packet_size: int = 128,
        baud: int = 57600,
        address: int = codec.DEFAULT_ADDRESS,
        password: int = 0,
        timing: float = 1.0,
        wire: bool = True,
        aura_led: bool = True,
        seed: int | None = None,
    ):
        self.library_size = library_size
        self.packet_size = packet_size
        self.baud = baud
        self.address = address
        self.password = password
        self.timing = timing  # 0: answer at once; 1: as slow as a real module
        self.wire = wire  # hold each reply for its time on a 57600-baud line
        self.has_aura_led = aura_led
        self.security_level = 3
        self.rng = random.Random(seed)
        self.library: dict[int, bytes] = {}
        self.buffers: dict[int, bytes | None] = {1: None, 2: None}
        self.led: tuple[int, int, int, int] | None = None  # last AuraLedConfig
        self.commands: list[str] = []  # names of the commands received, in order
        self.names: dict[bytes, str] = {}  # template identity -> finger name, for people reading a list
        # The module's touch output (R503 WAKEUP pin): called with True when a
        # finger lands and False when it lifts; see wire_touch().
        self.on_touch: Callable[[bool], None] | None = None
        # The sensor
        self._finger: str | None = None
        self._quality = "good"
        self._image: str | None = None
        # Faults on demand
        self.silent = False  # answer nothing: a dead or unpowered module
        self.flash_error = False  # Store, DeleteChar and Empty fail (0x18)
        self._corrupt = 0  # this many next replies get a wrong sum
        self._noisy = 0  # this many next replies are preceded by garbage
        self._verified = password == 0
        self._download: tuple[int, bytearray, float] | None = None  # DownChar in progress
        self._image_quality = "good"
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self.port = ""

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> str:
        self._master, self._slave = os.openpty()
        # Raw: no echo, no CR/LF translation, 8 bits, like a UART.
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name="fingerprint-emulator", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self._master = self._slave = -1

    def __enter__(self) -> "FingerprintEmulator":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def unplug(self) -> None:
        """Pull the cable: the line goes dead and reads on the port fail."""
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        try:
            os.close(self._master)
        except OSError:
            pass
        self._master = -1

    def power_cycle(self) -> None:
        """Power off and on: the module forgets the password check and says 0x55."""
        with self._lock:
            self._verified = self.password == 0
            self.buffers = {1: None, 2: None}
            self._image = None
            self._send(b"\x55")

    # -- the person at the sensor --------------------------------------------------------
    def place(self, finger: str, quality: str = "good") -> None:
        """Put ``finger`` (any name) on the sensor; ``quality="poor"`` for a smudged one."""
        with self._lock:
            self._finger, self._quality = finger, quality
            self.names[_identity(template_for(finger))] = finger
        self._touch(True)

    def lift(self) -> None:
        with self._lock:
            self._finger = None
        self._touch(False)

    def wire_touch(self, pin) -> None:
        """Drive a gpiozero mock pin as the module's touch output (high while a finger is on)."""
        self.on_touch = lambda touched: pin.drive_high() if touched else pin.drive_low()
        self._touch(self.finger_on)

    def _touch(self, touched: bool) -> None:
        if self.on_touch is not None:
            try:
                self.on_touch(touched)
            except Exception:
                log.exception("emulator: the touch output failed")

    @property
    def finger_on(self) -> bool:
        return self._finger is not None

    def enroll_directly(self, finger: str, slot: int) -> None:
        """Put a finger's template in the library without the protocol (set-up)."""
        with self._lock:
            self.library[slot] = template_for(finger, self.rng)
            self.names[_identity(self.library[slot])] = finger

    def slot_of(self, finger: str) -> int | None:
        identity = _identity(template_for(finger))
        for slot in sorted(self.library):
            if _identity(self.library[slot]) == identity:
                return slot
        return None

    # -- faults -----------------------------------------------------------------------------
    def send_noise(self, n: int = 32, with_headers: bool = True) -> None:
        """Garbage on the line now (and false packet headers in it)."""
        self._send(self._garbage(n, with_headers))

    def noisy_replies(self, count: int = 1) -> None:
        """The next ``count`` replies come after a burst of garbage."""
        self._noisy += count

    @property
    def faults_pending(self) -> int:
        """Garbled replies asked for and not sent yet (0: every one went out)."""
        return self._corrupt + self._noisy

    def corrupt_replies(self, count: int = 1) -> None:
        """The next ``count`` replies have a wrong checksum."""
        self._corrupt += count

    def fill_library(self) -> None:
        with self._lock:
            for slot in range(self.library_size):
                self.library.setdefault(slot, template_for(f"filler-{slot}", self.rng))

    def _garbage(self, n: int, with_headers: bool) -> bytes:
        data = bytearray(self.rng.getrandbits(8) for _ in range(n))
        if with_headers and n >= 12:
            # A false header claiming a plausible length: the hardest noise.
            data[3:12] = codec.HEADER + struct.pack(">IBH", self.address, codec.PID_ACK, 5)
        return bytes(data)

    # -- the line -----------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self._master < 0:
            return
        if self.wire:
            time.sleep(len(data) * 10 / self.baud)
        try:
            os.write(self._master, data)
        except OSError as e:
            log.debug("emulator: write failed: %s", e)

    def _serve(self) -> None:
        parser = FrameParser(self.address)
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.1)
                if not ready:
                    self._download_expired()
                    continue
                data = os.read(self._master, 4096)
            except OSError:
                return
            for item in parser.feed(data):
                try:
                    self._receive(item)
                except Exception:  # the emulator must never die on input
                    log.exception("emulator: failed on a packet")
                    self._reply(0xFE)

    def _receive(self, item) -> None:
        if self._download is not None:
            buffer, data, _ = self._download
            if isinstance(item, codec.Frame) and item.pid in (codec.PID_DATA, codec.PID_END_OF_DATA):
                if self.wire:
                    time.sleep((codec.HEAD_LEN + len(item.payload) + 2) * 10 / self.baud)
                data += item.payload
                if item.pid == codec.PID_END_OF_DATA:
                    self._download = None
                    self.buffers[buffer] = bytes(data) if _identity(bytes(data)) else None
                return
            # Anything else ends the transfer: a damaged one leaves no template.
            self._download = None
            self.buffers[buffer] = None
        if not isinstance(item, codec.Frame):
            self._reply(0x01)  # a command that arrived damaged: the module says so
        elif item.pid == codec.PID_COMMAND:
            self._handle(item.payload[0], item.payload[1:])

    def _download_expired(self) -> None:
        if self._download is not None and time.monotonic() > self._download[2]:
            self.buffers[self._download[0]] = None
            self._download = None

    def _reply(self, code: int, data: bytes = b"") -> None:
        if self.silent:
            return
        packet = bytearray(codec.ack(code, data, self.address))
        if self._corrupt:
            self._corrupt -= 1
            packet[-1] ^= 0x5A
        if self._noisy:
            self._noisy -= 1
            packet[:0] = self._garbage(24, True)
        self._send(bytes(packet))

    def _work(self, instruction: int, extra: float = 0.0) -> None:
        seconds = (TIMINGS.get(instruction, 0.003) + extra) * self.timing
        if seconds:
            time.sleep(seconds)

    # -- the commands --------------------------------------------------------------------
    def _handle(self, ins: int, args: bytes) -> None:
        name = codec.INSTRUCTIONS.get(ins, f"0x{ins:02X}")
        self.commands.append(name)
        if self.wire:
            # The command's own time on the line (a pty delivers it at once).
            time.sleep((codec.HEAD_LEN + 1 + len(args) + 2) * 10 / self.baud)
        with self._lock:
            if ins == codec.VFY_PWD:
                if len(args) != 4:
                    return self._reply(0x01)
                self._verified = struct.unpack(">I", args)[0] == self.password
                return self._reply(0x00 if self._verified else 0x13)
            if not self._verified:
                return self._reply(0x21)
            handler = getattr(self, f"_cmd_{name.lower()}", None)
            if handler is None or (ins == codec.AURA_LED and not self.has_aura_led):
                return self._reply(0xFC)
            try:
                handler(args)
            except struct.error:
                self._reply(0x01)  # arguments of the wrong length

    def _cmd_genimg(self, args: bytes) -> None:
        if self._finger is None:
            self._work(-1, NO_FINGER_TIME)
            self._image = None
            return self._reply(0x02)
        self._work(codec.GEN_IMG)
        self._image = self._finger
        self._image_quality = self._quality
        self._reply(0x00)

    def _cmd_img2tz(self, args: bytes) -> None:
        (buffer,) = struct.unpack(">B", args)
        self._work(codec.IMG2TZ)
        if buffer not in (1, 2):
            return self._reply(0x1A)
        if self._image is None:
            return self._reply(0x15)
        if self._image_quality != "good":
            return self._reply(0x06)
        self.buffers[buffer] = template_for(self._image, self.rng)
        self._reply(0x00)

    def _cmd_regmodel(self, args: bytes) -> None:
        self._work(codec.REG_MODEL)
        a, b = (_identity(self.buffers[1]), _identity(self.buffers[2]))
        if a is None or a != b:
            return self._reply(0x0A)
        self.buffers[2] = self.buffers[1]
        self._reply(0x00)

    def _cmd_store(self, args: bytes) -> None:
        buffer, slot = struct.unpack(">BH", args)
        self._work(codec.STORE)
        if slot >= self.library_size:
            return self._reply(0x0B)
        if self.flash_error:
            return self._reply(0x18)
        template = self.buffers.get(buffer)
        if _identity(template) is None:
            return self._reply(0x0C)
        self.library[slot] = template
        self._reply(0x00)

    def _cmd_search(self, args: bytes) -> None:
        buffer, start, count = struct.unpack(">BHH", args)
        self._work(codec.SEARCH, SEARCH_PER_TEMPLATE * len(self.library))
        probe = _identity(self.buffers.get(buffer))
        if probe is None:
            return self._reply(0x15)
        for slot in sorted(self.library):
            if start <= slot < start + count and _identity(self.library[slot]) == probe:
                return self._reply(0x00, struct.pack(">HH", slot, _score(probe, slot.to_bytes(2, "big"))))
        self._reply(0x09)

    def _cmd_match(self, args: bytes) -> None:
        self._work(codec.MATCH)
        a, b = (_identity(self.buffers[1]), _identity(self.buffers[2]))
        if a is None or a != b:
            return self._reply(0x08, b"\x00\x00")
        self._reply(0x00, struct.pack(">H", _score(a, b)))

    def _cmd_loadchar(self, args: bytes) -> None:
        buffer, slot = struct.unpack(">BH", args)
        self._work(codec.LOAD_CHAR)
        if slot >= self.library_size:
            return self._reply(0x0B)
        if slot not in self.library:
            return self._reply(0x0C)
        self.buffers[buffer] = self.library[slot]
        self._reply(0x00)

    def _cmd_upchar(self, args: bytes) -> None:
        (buffer,) = struct.unpack(">B", args)
        template = self.buffers.get(buffer)
        if template is None:
            return self._reply(0x0D)
        self._reply(0x00)
        if not self.silent:
            for packet in codec.data_packets(template, self.packet_size, self.address):
                self._send(packet)

    def _cmd_downchar(self, args: bytes) -> None:
        (buffer,) = struct.unpack(">B", args)
        self._reply(0x00)
        # The data packets follow; ``_receive`` collects them.
        self._download = (buffer, bytearray(), time.monotonic() + 2.0)

    def _cmd_deletechar(self, args: bytes) -> None:
        slot, count = struct.unpack(">HH", args)
        self._work(codec.DELETE_CHAR)
        if slot + count > self.library_size or count == 0:
            return self._reply(0x10)
        if self.flash_error:
            return self._reply(0x18)
        for s in range(slot, slot + count):
            self.library.pop(s, None)
        self._reply(0x00)

    def _cmd_empty(self, args: bytes) -> None:
        self._work(codec.EMPTY)
        if self.flash_error:
            return self._reply(0x11)
        self.library.clear()
        self._reply(0x00)

    def _cmd_setsyspara(self, args: bytes) -> None:
        param, value = struct.unpack(">BB", args)
        if param == codec.PARAM_BAUD and 1 <= value <= 12:
            self.baud = 9600 * value
        elif param == codec.PARAM_SECURITY and 1 <= value <= 5:
            self.security_level = value
        elif param == codec.PARAM_PACKET_SIZE and value < len(codec.PACKET_SIZES):
            self.packet_size = codec.PACKET_SIZES[value]
        else:
            return self._reply(0x1A)
        self._reply(0x00)

    def _cmd_readsyspara(self, args: bytes) -> None:
        status = (4 if self._verified else 0) | (8 if self._image else 0)
        self._reply(0x00, struct.pack(
            ">HHHHIHH", status, 0x0000, self.library_size, self.security_level, self.address,
            codec.PACKET_SIZES.index(self.packet_size), self.baud // 9600,
        ))

    def _cmd_templatenum(self, args: bytes) -> None:
        self._reply(0x00, struct.pack(">H", len(self.library)))

    def _cmd_readindextable(self, args: bytes) -> None:
        (page,) = struct.unpack(">B", args)
        if page > 3:
            return self._reply(0x0B)
        bitmap = bytearray(32)
        for slot in self.library:
            if page * 256 <= slot < (page + 1) * 256:
                offset = slot - page * 256
                bitmap[offset // 8] |= 1 << (offset % 8)
        self._reply(0x00, bytes(bitmap))

    def _cmd_auraledconfig(self, args: bytes) -> None:
        self.led = struct.unpack(">BBBB", args)
        self._reply(0x00)


CONSOLE_HELP = """commands, one per line:
  place NAME [poor]   put finger NAME on the sensor (poor: a smudged one)
  lift                take it off
  tap NAME [SECONDS]  place NAME, lift after SECONDS (default 1.5)
  enroll NAME SLOT    put NAME's template in SLOT directly
  list                the library: slot and finger
  noise [N]           N bytes of garbage on the line now (default 32)
  corrupt [N]         the next N replies with a wrong checksum
  silent on|off       stop or resume answering (a dead module)
  fill                fill the library
  help, quit"""


def console(emulator: FingerprintEmulator, lines, say) -> None:
    """Drive the emulator from text commands (``congso emulate fingerprint``).

    ``lines`` is any iterable of lines (stdin); ``say`` prints one line.
    A bad line gets an error and the console goes on.
    """
    for line in lines:
        words = line.split()
        if not words:
            continue
        cmd, args = words[0].lower(), words[1:]
        try:
            if cmd == "quit":
                return
            say(_console_command(emulator, cmd, args))
        except (ValueError, IndexError) as e:
            say(f"error: {e or 'missing argument'}; type help")


def _console_command(emu: FingerprintEmulator, cmd: str, args: list[str]) -> str:
    if cmd == "help":
        return CONSOLE_HELP
    if cmd == "place":
        emu.place(args[0], "poor" if args[1:2] == ["poor"] else "good")
        return f"finger {args[0]} on the sensor"
    if cmd == "lift":
        emu.lift()
        return "sensor empty"
    if cmd == "tap":
        seconds = float(args[1]) if len(args) > 1 else 1.5
        emu.place(args[0])
        threading.Timer(seconds, emu.lift).start()
        return f"finger {args[0]} on the sensor for {seconds:g} s"
    if cmd == "enroll":
        slot = int(args[1])
        if not 0 <= slot < emu.library_size:
            raise ValueError(f"slot {slot} outside the library (0..{emu.library_size - 1})")
        emu.enroll_directly(args[0], slot)
        return f"{args[0]} in slot {slot}"
    if cmd == "list":
        rows = [f"{slot:>4}  {emu.names.get(_identity(t), '(unknown finger)')}" for slot, t in sorted(emu.library.items())]
        return "\n".join(rows) if rows else "library empty"
    if cmd == "noise":
        emu.send_noise(int(args[0]) if args else 32)
        return "noise sent"
    if cmd == "corrupt":
        n = int(args[0]) if args else 1
        emu.corrupt_replies(n)
        return f"the next {n} replies corrupt"
    if cmd == "silent":
        if args[:1] not in (["on"], ["off"]):
            raise ValueError("silent on or silent off")
        emu.silent = args[0] == "on"
        return "silent" if emu.silent else "answering"
    if cmd == "fill":
        emu.fill_library()
        return f"library full ({emu.library_size})"
    raise ValueError(f"unknown command {cmd!r}")
