"""Incremental packet parser: bytes in any chunks, frames and typed errors out.

It never blocks and never raises: ``feed`` returns what the bytes so far
complete, each a ``Frame`` or a ``BadFrame``. Bytes before a header (the
module's power-on ``0x55``, line noise) are skipped and counted. A
header whose packet fails a check (address, PID, length, sum) yields one
``BadFrame`` and the search resumes one byte after that header, so a real
packet hidden behind a false header is still found.
"""

from __future__ import annotations

import struct

from . import codec
from .errors import BadFrame


class FrameParser:
    def __init__(self, address: int = codec.DEFAULT_ADDRESS):
        self.address = address
        self._buf = bytearray()
        self.skipped = 0  # noise bytes dropped while looking for a header

    def feed(self, data: bytes) -> list[codec.Frame | BadFrame]:
        self._buf += data
        out: list[codec.Frame | BadFrame] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def finish(self) -> list[BadFrame]:
        """End of stream: a partial packet left over is a truncated frame."""
        rest = bytes(self._buf)
        self._buf.clear()
        start = rest.find(codec.HEADER)
        if start < 0:
            # A lone trailing 0xEF could be half a header: still just noise.
            self.skipped += len(rest)
            return []
        self.skipped += start
        return [BadFrame(f"truncated packet: {len(rest) - start} bytes then nothing")]

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a packet."""
        return len(self._buf)

    def _next(self) -> codec.Frame | BadFrame | None:
        buf = self._buf
        start = buf.find(codec.HEADER)
        if start < 0:
            # Keep a trailing 0xEF: it may be the first half of a header.
            keep = 1 if buf.endswith(codec.HEADER[:1]) else 0
            self.skipped += len(buf) - keep
            del buf[: len(buf) - keep]
            return None
        if start:
            self.skipped += start
            del buf[:start]
        if len(buf) < codec.HEAD_LEN:
            return None
        address, pid, length = struct.unpack_from(">IBH", buf, 2)
        problem = None
        if address != self.address:
            problem = f"packet for address {address:08X}, we are {self.address:08X}"
        elif pid not in codec.PIDS:
            problem = f"unknown packet identifier 0x{pid:02X}"
        elif not codec.MIN_LEN <= length <= codec.MAX_LEN:
            problem = f"length {length} outside {codec.MIN_LEN}..{codec.MAX_LEN}"
        if problem is None:
            total = codec.HEAD_LEN + length
            if len(buf) < total:
                return None
            payload = bytes(buf[codec.HEAD_LEN : total - 2])
            (got,) = struct.unpack_from(">H", buf, total - 2)
            want = codec.checksum(pid, payload)
            if got == want:
                del buf[:total]
                return codec.Frame(pid, payload, address)
            problem = f"bad checksum {got:04X}, expected {want:04X}"
        # Resynchronise one byte after this header, not after the claimed
        # length: the claimed length is exactly what cannot be trusted.
        del buf[:1]
        return BadFrame(problem)
