"""Door benchmark: from a credential to the feedback, and the door's memory.

    .venv/bin/python bench/attendance.py [--scans N] [--finger-scans N]

A real ``AttendanceNode`` in this process (gpiozero MockFactory pins, no
broker reachable: the MQTT side only retries in the background, as at a
door whose network is down), measured side by side in the same run:

1. Card path, from the card reader's callback (``on_card(uid)``, what
   ``CardReader`` calls once pcscd has the UID) to the feedback given
   (the node's stdout line, printed right after the LEDs/relay are set):
   - outbox ``synchronous=FULL`` (as shipped: committed to the disk first);
   - ``synchronous=NORMAL`` (WAL: durable against a crash of the program,
     not a power cut);
   - no commit at all (``record`` replaced by building the event in
     memory): what the commit costs.
   The card's own time on the reader (pcscd poll + Get UID) is in
   bench/devices.py.
2. Finger path, from the finger placed on the emulated module to the
   feedback: emulator timing 1 (a real R503's capture, template and search
   times) with the touch line wired, the same without it (the door polls
   GenImg every [attendance] finger_poll_s), and timing 0 (the driver, pty
   and node alone).
3. Memory: the process's RSS (VmRSS) before the node is built, after it
   started, and after all the scans.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid

from gpiozero.pins.mock import MockFactory

from congso.attendance_node.node import AttendanceNode
from congso.attendance_node.roster import Roster
from congso.devices.fingerprint.emulator import FingerprintEmulator
from congso.protocol import settings as settings_mod

STAFF = 50
PINS = {"CONGSO_GPIO_GREEN_LED": "GPIO17", "CONGSO_GPIO_RED_LED": "GPIO18", "CONGSO_GPIO_BUZZER": "GPIO22",
        "CONGSO_GPIO_RELAY": "GPIO27", "CONGSO_GPIO_TOUCH": "GPIO23"}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def roster_payload(node_id: str) -> dict:
    return {"version": 1, "staff": [
        {"staff_id": f"NV{i:03d}", "name": f"Cán bộ {i}", "cards": [f"0A0B{i:04X}"], "fingers": {node_id: [i]}}
        for i in range(STAFF)]}


class Door:
    """A node and a way to wait for its next feedback line."""

    def __init__(self, data_dir: str, port: str | None, touch: bool = True):
        env = {"CONGSO_NODE_ID": "door-1", "CONGSO_DATA_DIR": data_dir, "CONGSO_MQTT_PORT": "1",
               "CONGSO_CLOCK_SYNCED": "yes", "CONGSO_ATTENDANCE_REPEAT_WINDOW_S": "0",
               "CONGSO_CARD_BACKEND": "none", "CONGSO_MQTT_RECONNECT_MIN_S": "30", "CONGSO_MQTT_RECONNECT_MAX_S": "60",
               **PINS}
        if not touch:
            env["CONGSO_GPIO_TOUCH"] = ""
        if port:
            env.update(CONGSO_FINGERPRINT_BACKEND="serial", CONGSO_FINGERPRINT_PORT=port)
        else:
            env["CONGSO_FINGERPRINT_BACKEND"] = "none"
        self.factory = MockFactory()
        self.got = threading.Event()
        self.line = ""
        self.done_at = 0.0
        self.node = AttendanceNode(settings_mod.load(environ=env), pin_factory=self.factory, out=self._out)
        self.node.roster = Roster(roster_payload("door-1"), "door-1")

    def _out(self, line: str) -> None:
        if line.startswith("feedback"):
            self.done_at = time.perf_counter()
            self.line = line
            self.got.set()

    def stop(self) -> None:
        self.node.stop()


def card_latencies(door: Door, n: int) -> list[float]:
    out = []
    for k in range(n):
        door.got.clear()
        t0 = time.perf_counter()
        door.node._on_card(f"0A0B{k % STAFF:04X}")  # what CardReader calls
        assert door.got.is_set() and "accepted" in door.line, door.line
        out.append((door.done_at - t0) * 1000)
    return out


def finger_latencies(door: Door, emu: FingerprintEmulator, n: int) -> list[float]:
    out = []
    for k in range(n):
        door.got.clear()
        finger = f"finger-{k % STAFF}"
        t0 = time.perf_counter()
        emu.place(finger)
        if not door.got.wait(10):
            raise SystemExit(f"no feedback for {finger}")
        out.append((door.done_at - t0) * 1000)
        assert "accepted" in door.line, door.line
        emu.lift()
        time.sleep(0.2)  # a hand needs longer than this to come back
    return out


def show(label: str, ms: list[float]) -> None:
    print(f"  {label:<44} p50 {statistics.median(ms):7.2f} ms   p99 {pct(ms, 99):7.2f} ms   (n={len(ms)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scans", type=int, default=2000, help="card scans per variant (default 2000)")
    ap.add_argument("--finger-scans", type=int, default=30, help="finger scans per emulator timing (default 30)")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    rss_start = rss_mb()
    print(f"door benchmark: {STAFF} staff in the roster, python {sys.version.split()[0]}, pid {os.getpid()}")

    with tempfile.TemporaryDirectory(prefix="congso-bench-door-") as tmp:
        print(f"\n1. card: reader callback -> feedback given ({args.scans} scans each, interleaved in 4 rounds)")
        door = Door(os.path.join(tmp, "card"), None)
        door.node.start()
        rss_started = rss_mb()
        outbox_db = door.node.runtime.outbox._db
        real_record = door.node.runtime.record

        def no_commit(kind, fields):
            return {"event_id": str(uuid.uuid4()), "clock_synced": True, **fields}

        results = {"FULL": [], "NORMAL": [], "none": []}
        per_round = max(1, args.scans // 4)
        for _ in range(4):  # alternate, so a busy neighbour hurts all three alike
            for mode in results:
                if mode == "none":
                    door.node.runtime.record = no_commit
                else:
                    door.node.runtime.record = real_record
                    outbox_db.execute(f"PRAGMA synchronous={mode}")
                results[mode] += card_latencies(door, per_round)
        door.node.runtime.record = real_record
        outbox_db.execute("PRAGMA synchronous=FULL")
        show("outbox commit synchronous=FULL (shipped)", results["FULL"])
        show("outbox commit synchronous=NORMAL", results["NORMAL"])
        show("no commit (event built in memory only)", results["none"])
        full, none = statistics.median(results["FULL"]), statistics.median(results["none"])
        print(f"  the durable commit costs {full - none:.2f} ms of the p50")
        depth = door.node.runtime.outbox.depth()
        rss_after_cards = rss_mb()
        door.stop()

        print(f"\n2. finger: placed on the sensor -> feedback ({args.finger_scans} scans each)")
        for timing, touch in ((1.0, True), (1.0, False), (0.0, True)):
            emu = FingerprintEmulator(timing=timing)
            for i in range(STAFF):
                emu.enroll_directly(f"finger-{i}", i)
            fdoor = Door(os.path.join(tmp, f"finger-{timing}-{touch}"), emu.start(), touch)
            if touch:
                emu.wire_touch(fdoor.factory.pin(PINS["CONGSO_GPIO_TOUCH"]))
            fdoor.node.start()
            try:
                ms = finger_latencies(fdoor, emu, args.finger_scans)
            finally:
                fdoor.stop()
                emu.stop()
            how = "touch line" if touch else f"polling every {fdoor.node.settings.attendance.finger_poll_s:g} s"
            show(f"timing {timing:g} ({'a real R503' if timing else 'driver + node'}), {how}", ms)
        rss_end = rss_mb()

    print("\n3. memory (VmRSS of this process)")
    print(f"  before the node:                {rss_start:6.1f} MB")
    print(f"  door started (runtime, GPIO):    {rss_started:6.1f} MB")
    print(f"  after {3 * per_round * 4:>5} card scans ({depth} in the outbox): {rss_after_cards:6.1f} MB")
    print(f"  after the finger scans:          {rss_end:6.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
