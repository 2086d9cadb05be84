"""The module's packet format, as pure functions.

    EF 01 | address (4) | PID (1) | LEN (2) | payload (LEN - 2) | SUM (2)

Big endian. ``LEN`` counts the payload plus the two sum bytes; ``SUM`` is
``PID + LEN_hi + LEN_lo + sum(payload)`` modulo 65536 (the header and the
address are not summed). The module's datasheets cap a packet at 256 data
bytes, hence ``LEN <= 258``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = b"\xEF\x01"
DEFAULT_ADDRESS = 0xFFFFFFFF
HEAD_LEN = 9  # header 2 + address 4 + PID 1 + LEN 2
MAX_LEN = 258
MIN_LEN = 3  # one payload byte (an instruction or a confirmation code) and the sum

# Packet identifiers
PID_COMMAND = 0x01
PID_DATA = 0x02
PID_ACK = 0x07
PID_END_OF_DATA = 0x08
PIDS = {PID_COMMAND: "command", PID_DATA: "data", PID_ACK: "ack", PID_END_OF_DATA: "end of data"}

# Instruction codes (datasheet names)
GEN_IMG = 0x01
IMG2TZ = 0x02
MATCH = 0x03
SEARCH = 0x04
REG_MODEL = 0x05
STORE = 0x06
LOAD_CHAR = 0x07
UP_CHAR = 0x08
DOWN_CHAR = 0x09
DELETE_CHAR = 0x0C
EMPTY = 0x0D
SET_SYS_PARA = 0x0E
READ_SYS_PARA = 0x0F
VFY_PWD = 0x13
TEMPLATE_NUM = 0x1D
READ_INDEX_TABLE = 0x1F
AURA_LED = 0x35  # R503 only

INSTRUCTIONS = {
    GEN_IMG: "GenImg",
    IMG2TZ: "Img2Tz",
    MATCH: "Match",
    SEARCH: "Search",
    REG_MODEL: "RegModel",
    STORE: "Store",
    LOAD_CHAR: "LoadChar",
    UP_CHAR: "UpChar",
    DOWN_CHAR: "DownChar",
    DELETE_CHAR: "DeleteChar",
    EMPTY: "Empty",
    SET_SYS_PARA: "SetSysPara",
    READ_SYS_PARA: "ReadSysPara",
    VFY_PWD: "VfyPwd",
    TEMPLATE_NUM: "TemplateNum",
    READ_INDEX_TABLE: "ReadIndexTable",
    AURA_LED: "AuraLedConfig",
}

# SetSysPara parameter numbers
PARAM_BAUD = 4  # value N: 9600 * N baud
PARAM_SECURITY = 5  # 1 (lenient) .. 5 (strict)
PARAM_PACKET_SIZE = 6  # 0: 32, 1: 64, 2: 128, 3: 256 bytes
PACKET_SIZES = (32, 64, 128, 256)


@dataclass(frozen=True)
class Frame:
    """One decoded packet."""

    pid: int
    payload: bytes
    address: int = DEFAULT_ADDRESS

    def encode(self) -> bytes:
        return encode(self.pid, self.payload, self.address)

    @property
    def code(self) -> int:
        """First payload byte: the confirmation code of an ack, the instruction of a command."""
        return self.payload[0]


def checksum(pid: int, payload: bytes) -> int:
    length = len(payload) + 2
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def encode(pid: int, payload: bytes, address: int = DEFAULT_ADDRESS) -> bytes:
    """The bytes of one packet. Refuses what no module could parse."""
    if pid not in PIDS:
        raise ValueError(f"unknown packet identifier 0x{pid:02X}")
    length = len(payload) + 2
    if not MIN_LEN <= length <= MAX_LEN:
        raise ValueError(f"payload of {len(payload)} bytes: a packet carries 1 to {MAX_LEN - 2}")
    return (
        HEADER
        + struct.pack(">IBH", address & 0xFFFFFFFF, pid, length)
        + bytes(payload)
        + struct.pack(">H", checksum(pid, payload))
    )


def command(instruction: int, args: bytes = b"", address: int = DEFAULT_ADDRESS) -> bytes:
    """A command packet: the instruction code followed by its arguments."""
    return encode(PID_COMMAND, bytes([instruction]) + args, address)


def ack(code: int, data: bytes = b"", address: int = DEFAULT_ADDRESS) -> bytes:
    """An acknowledge packet (what the module answers)."""
    return encode(PID_ACK, bytes([code]) + data, address)


def data_packets(data: bytes, packet_size: int, address: int = DEFAULT_ADDRESS) -> list[bytes]:
    """Split ``data`` into data packets of ``packet_size``, the last one marked end of data."""
    if packet_size not in PACKET_SIZES:
        raise ValueError(f"packet size must be one of {PACKET_SIZES}, got {packet_size}")
    if not data:
        raise ValueError("no data to send")
    chunks = [data[i : i + packet_size] for i in range(0, len(data), packet_size)]
    return [
        encode(PID_END_OF_DATA if i == len(chunks) - 1 else PID_DATA, chunk, address)
        for i, chunk in enumerate(chunks)
    ]
