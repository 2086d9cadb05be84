"""Property tests: whatever arrives on the serial line, the parser and the
driver end in a frame or a typed error, never a hang and never a crash."""

from __future__ import annotations

import os
import select
import threading
import time
import tty

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from congso.devices.fingerprint import FingerprintError, FingerprintModule, codec
from congso.devices.fingerprint.errors import BadFrame
from congso.devices.fingerprint.parser import FrameParser

pids = st.sampled_from(sorted(codec.PIDS))
payloads = st.binary(min_size=1, max_size=256)
addresses = st.one_of(st.just(codec.DEFAULT_ADDRESS), st.integers(0, 0xFFFFFFFF))
frames = st.builds(codec.Frame, pids, payloads, st.just(codec.DEFAULT_ADDRESS))
# Noise without 0xEF cannot start a header, so every frame in it must be found.
header_free_noise = st.binary(max_size=40).map(lambda b: b.replace(b"\xef", b"\x55"))


def parse_in_chunks(data: bytes, cuts: list[int]) -> list:
    parser = FrameParser()
    out = []
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        out += parser.feed(data[last:cut])
        last = cut
    out += parser.feed(data[last:])
    out += parser.finish()
    return out


def normalise(items):
    return [repr(i) if isinstance(i, BadFrame) else i for i in items]


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=20))
def test_any_bytes_in_any_chunks_give_frames_or_typed_errors(data, cuts):
    items = parse_in_chunks(data, cuts)
    assert all(isinstance(i, (codec.Frame, BadFrame)) for i in items)
    # How the bytes were cut into reads changes nothing.
    assert normalise(items) == normalise(parse_in_chunks(data, []))


@given(pids, payloads, addresses)
def test_encode_then_parse_is_the_identity(pid, payload, address):
    parser = FrameParser(address)
    assert parser.feed(codec.encode(pid, payload, address)) == [codec.Frame(pid, payload, address)]
    assert parser.pending == 0


@given(st.lists(st.tuples(header_free_noise, frames), max_size=8), st.lists(st.integers(0, 5000), max_size=10))
def test_every_frame_is_found_between_noise(pairs, cuts):
    stream = b"".join(noise + frame.encode() for noise, frame in pairs)
    items = parse_in_chunks(stream, cuts)
    assert items == [frame for _, frame in pairs]


@given(frames, st.integers(0, 50), st.integers(1, 255))
def test_a_corrupted_byte_is_a_bad_frame_and_the_next_frame_survives(frame, position, flip):
    good = codec.ack(0)
    damaged = bytearray(frame.encode())
    # Any byte after the header but the length (tested on its own below): a
    # single changed byte always breaks the address, the PID or the sum.
    positions = [i for i in range(2, len(damaged)) if i not in (7, 8)]
    damaged[positions[position % len(positions)]] ^= flip
    items = FrameParser().feed(bytes(damaged) + good)
    assert isinstance(items[0], BadFrame)
    assert frame not in items[:-1]
    assert items[-1] == codec.Frame(codec.PID_ACK, b"\x00")


def test_length_over_258_is_refused_without_waiting_for_it():
    bogus = codec.HEADER + b"\xff\xff\xff\xff\x07\x01\x03"  # claims 259 bytes
    items = FrameParser().feed(bogus + codec.ack(0))
    assert isinstance(items[0], BadFrame) and "length 259" in str(items[0])
    assert items[-1] == codec.Frame(codec.PID_ACK, b"\x00")


class GarbageModule:
    """A 'module' on a pty that answers every write with the given bytes."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.reply = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            if select.select([self.master], [], [], 0.05)[0]:
                os.read(self.master, 4096)
                if self.reply:
                    os.write(self.master, self.reply)

    def close(self):
        self.stop.set()
        self.thread.join()
        os.close(self.master)
        os.close(self.slave)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_the_driver_ends_in_a_reply_or_a_typed_error_before_its_deadline(reply):
    garbage = GarbageModule()
    module = FingerprintModule(garbage.port, timeout_s=0.2)
    try:
        module._open_port()  # no handshake: this 'module' only talks garbage
        garbage.reply = reply
        started = time.monotonic()
        try:
            module.template_count()
        except FingerprintError:
            pass
        # The deadline, plus a retry after a bad frame, plus the drain.
        assert time.monotonic() - started < 1.2
    finally:
        module.close()
        garbage.close()
