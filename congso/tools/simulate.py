"""A simulated node: the real ``NodeRuntime`` fed with made-up check-ins or votes.

Used by ``make demo``, the end-to-end tests and the benchmarks to stand in
for a door or a kiosk before (and besides) the real roles. It goes through
exactly the same outbox, link and acks as a real node; only the person in
front of the device is simulated.

For each event it prints ``committed <seq> <event_id>`` on stdout after the
commit: the moment a real node would beep. Tests kill it right after that
line to prove the event is not lost.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time

from ..protocol.node import NodeRuntime
from ..protocol.settings import Settings

log = logging.getLogger(__name__)

DEMO_CARDS = ["04A1B2C3D4E5F6", "04112233445566", "0499AABBCCDDEE", "DEADBEEF", "04C0FFEE123456"]
DEMO_LEVELS = ["very_satisfied"] * 5 + ["satisfied"] * 4 + ["dissatisfied"]


def make_fields(kind: str, rng: random.Random, desk_id: str = "mot-cua-1") -> dict:
    if kind == "attendance":
        if rng.random() < 0.3:
            return {"method": "finger", "credential": str(rng.randint(1, 50)), "staff_id": f"NV{rng.randint(1, 20):03d}", "match_score": rng.randint(60, 250)}
        card = rng.choice(DEMO_CARDS)
        known = card != "DEADBEEF"
        return {"method": "card", "credential": card, "staff_id": f"NV{DEMO_CARDS.index(card) + 1:03d}" if known else None, "match_score": None}
    level = rng.choice(DEMO_LEVELS)
    return {
        "desk_id": desk_id,
        "level": level,
        "reasons": ["thoi_gian"] if level == "dissatisfied" else [],
        "session_id": None,
        "officer_id": None,
        "dossier_code": None,
    }


class EmulatedFingers:
    """Finger check-ins that go through the real driver and the module emulator.

    Used when ``[fingerprint] backend = "emulator"``: the staff's fingers are
    in the emulated module's library (slot i is NV00{i+1}), a simulated
    person places a finger, and the driver identifies it as at a real door.
    Some fingers are not enrolled: they make no event, as at a real door.
    """

    STAFF = 20
    STRANGERS = 3

    def __init__(self, settings: Settings, seed: int | None = None):
        from ..devices.fingerprint.backends import connect

        self.module, self.emulator = connect(settings)
        for i in range(self.STAFF):
            self.emulator.enroll_directly(f"NV{i + 1:03d}", i)
        self.module.open()

    def scan(self, rng: random.Random) -> dict | None:
        finger = f"NV{rng.randint(1, self.STAFF + self.STRANGERS):03d}"
        self.emulator.place(finger)
        try:
            match = self.module.identify(wait_s=1.0)
        finally:
            self.emulator.lift()
        if match is None:
            log.info("finger %s not recognised: no event", finger)
            return None
        return {"method": "finger", "credential": str(match.slot), "staff_id": f"NV{match.slot + 1:03d}", "match_score": match.score}

    def close(self) -> None:
        self.module.close()
        self.emulator.stop()


class SimulatedNode:
    def __init__(self, settings: Settings, kind: str = "attendance", seed: int | None = None):
        if kind not in ("attendance", "rating"):
            raise ValueError("a simulated node is an attendance or a rating node")
        self.kind = kind
        self.rng = random.Random(seed)
        self.fingers = None
        if kind == "attendance" and settings.fingerprint.backend == "emulator":
            self.fingers = EmulatedFingers(settings, seed)
        self.runtime = NodeRuntime(settings, kind=kind, devices=self._devices)
        self.runtime.commands["identify"] = self._identify

    def _devices(self) -> dict:
        if self.fingers is None:
            return {"simulated": "ok"}
        return {"fingerprint": self.fingers.module.status}

    def _identify(self, args: dict) -> dict:
        log.info("IDENTIFY: this is simulated node %s", self.runtime.node_id)
        return {"node_id": self.runtime.node_id, "simulated": True}

    def emit(self) -> dict | None:
        fields = make_fields(self.kind, self.rng)
        if self.fingers is not None and fields.get("method") == "finger":
            fields = self.fingers.scan(self.rng)
            if fields is None:
                return None
        event = self.runtime.record(self.kind, fields)
        print(f"committed {event['seq']} {event['event_id']}", flush=True)
        return event

    def run(self, count: int | None, rate: float, exit_when_drained: bool, stop: threading.Event) -> int:
        """Emit ``count`` events (None: until stopped) at ``rate``/s (0: flat out); return the exit code."""
        self.runtime.start()
        made = 0
        interval = 1.0 / rate if rate > 0 else 0.0
        next_at = time.monotonic()
        try:
            while not stop.is_set() and (count is None or made < count):
                if interval:
                    delay = next_at - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                    next_at += interval
                self.emit()
                made += 1
            if exit_when_drained:
                while not stop.is_set() and self.runtime.outbox.depth() > 0:
                    stop.wait(0.2)
                print(f"drained {made}", flush=True)
            else:
                stop.wait()
        finally:
            self.runtime.stop()
            if self.fingers is not None:
                self.fingers.close()
        return 0


def run_cli(settings: Settings, kind: str, count: int | None, rate: float, exit_when_drained: bool, seed: int | None) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    node = SimulatedNode(settings, kind, seed)
    return node.run(count, rate, exit_when_drained, stop)

