"""``congso attendance run``: the door.

A finger and a card are waited for at the same time (two threads); both
end up in ``AttendanceNode.credential``, which does, in this order:

1. resolve the credential against the roster (the retained state, kept on
   disk: a door booted without a network still knows everybody);
2. the same person again within ``[attendance] repeat_window_s``: a short
   beep, nothing recorded;
3. ``runtime.record(...)``: the event is committed to the outbox;
4. only then feedback: green, short beep and the door strike for known
   staff; red and a long beep otherwise; red blinking and three beeps if
   the commit failed (full disk): the person knows to try again or write
   it down. A clock never synchronised adds its own pattern afterwards.

One line per credential goes to stdout after the feedback (tests and the
technician watching ``journalctl`` read it)::

    feedback accepted card 04A1B2C3 NV001 <event_id>
    feedback refused card DEADBEEF - <event_id>
    feedback repeat finger 3 NV001 -
    feedback refused finger - -
    feedback error card 04A1B2C3 NV001 -       (the outbox could not commit)

and ``roster <version> staff <n> fingers <n at this door>`` when a roster arrives.

with `` clock_unsynced`` appended when the clock warning followed.

The repeat window lives in memory: after a restart the first scan of a
person is recorded again, which costs nothing (reports take the first and
last scan of the day) and keeps the door free of another file to corrupt.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable

from congso.devices import MISSING
from congso.devices import gpio
from congso.devices.cardreader import CardReader
from congso.devices.fingerprint.backends import connect
from congso.protocol import topics, watchdog
from congso.protocol.node import NodeRuntime
from congso.protocol.settings import Settings

from . import enrol
from .finger import FingerSource, device_state
from . import roster as roster_mod
from .roster import Roster, normalise_uid

log = logging.getLogger(__name__)


class AttendanceNode:
    """The door: devices, roster and runtime joined. ``start()``, then ``stop()``."""

    def __init__(self, settings: Settings, *, pin_factory=None, out: Callable[[str], None] | None = None,
                 with_card: bool = True, with_finger: bool = True):
        self.settings = settings
        a = settings.attendance
        self.repeat_window_s = float(a.repeat_window_s)
        self.enroll_timeout_s = float(a.enroll_timeout_s)
        self.out = out or (lambda line: print(line, flush=True))
        self.runtime = NodeRuntime(settings, kind="attendance", keep_state=True, on_state=self._on_state,
                                   devices=self.devices, extra_health=self.extra_health)
        self.node_id = self.runtime.node_id
        self.roster, self.roster_parts = roster_mod.from_cache(self.runtime.cached_state(), self.node_id,
                                                               settings.data_dir / "roster-whole.json")
        if self.roster.loaded:
            log.info("roster version %s from disk: %d staff", self.roster.version, len(self.roster))
        else:
            log.warning("no roster yet (never connected to the gateway): every credential is refused until it comes")
        self.feedback = gpio.Feedback(settings.gpio, pin_factory)
        self._lock = threading.Lock()  # one credential at a time: the repeat window and the LEDs agree
        self._last_seen: dict[str, float] = {}  # repeat key -> monotonic time recorded
        self._pattern = 0  # bumped per feedback, so a late clock warning never hides a newer pattern
        self.counts = {"accepted": 0, "refused": 0, "repeat": 0, "error": 0}

        self.fingers: FingerSource | None = None
        self.emulator = None
        if with_finger:
            module, self.emulator = connect(settings)
            if module is not None:
                touch = None
                if settings.gpio.touch:
                    try:
                        touch = gpio.touch_line(settings.gpio, pin_factory)
                    except Exception as e:
                        log.error("touch line %s cannot be claimed (%s): polling the module instead", settings.gpio.touch, e)
                    if touch is not None and self.emulator is not None and pin_factory is not None:
                        self.emulator.wire_touch(pin_factory.pin(settings.gpio.touch))
                self.fingers = FingerSource(module, self._on_finger, float(a.finger_poll_s), touch,
                                            on_bad_image=lambda why: self._refuse_finger())
        self.card: CardReader | None = None
        if with_card:
            self.card = CardReader.from_settings(settings, on_card=self._on_card)

        c = self.runtime.commands
        c["enroll"] = lambda args: enrol.enroll(self, args)
        c["delete_finger"] = lambda args: enrol.delete_finger(self, args)
        c["export_finger"] = lambda args: enrol.export_finger(self, args)
        c["import_finger"] = lambda args: enrol.import_finger(self, args)
        c["identify"] = lambda args: enrol.identify(self, args)

    # -- health -----------------------------------------------------------------
    def devices(self) -> dict[str, str]:
        states = dict(self.feedback.status)
        if self.settings.fingerprint.backend != "none":
            states["fingerprint"] = device_state(self.fingers)
        if self.settings.card.backend != "none":
            states["card"] = self.card.status if self.card else MISSING
        return states

    def extra_health(self) -> dict:
        return {"roster_version": self.roster.version, "scans": dict(self.counts)}

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        # The module first, so the first health message already tells the truth.
        if self.fingers is not None and not self.fingers.open():
            log.warning("no fingerprint module: running with card only (will keep trying)")
        self.runtime.start()
        if self.fingers is not None:
            self.fingers.start()
        else:
            log.info("no fingerprint module fitted ([fingerprint] backend = none): running with card only")
        if self.card is not None:
            self.card.start()
            threading.Thread(target=self._report_card_reader, daemon=True, name="card-check").start()
        else:
            log.info("no card reader fitted ([card] backend = none): running with fingers only")

    def _report_card_reader(self) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.card.status == MISSING:
            time.sleep(0.2)
        if self.card.status == MISSING:
            log.warning("no card reader (%s): running with fingers only (will keep looking)",
                        self.card.last_error or "none found")

    # An enrolment holds the finger loop for up to enroll_timeout_s plus the lift.
    STUCK_AFTER_S = 90.0

    def alive(self) -> str | None:
        """None when the credential loops are going round; else what is stuck (stops the watchdog)."""
        if self.fingers is not None and self.fingers.loop_age_s() > self.STUCK_AFTER_S:
            return f"the finger loop has not run for {self.fingers.loop_age_s():.0f} s"
        if self.card is not None and not self.card.running:
            return "the card reader's thread has stopped"
        return None

    def stop(self) -> None:
        if self.card is not None:
            self.card.stop()
        if self.fingers is not None:
            self.fingers.stop()
        if self.emulator is not None:
            self.emulator.stop()
        self.runtime.stop()
        self.feedback.close()

    # -- state --------------------------------------------------------------------
    def _on_state(self, where: topics.Topic, payload: dict | None) -> None:
        if where.kind != "state" or payload is None:
            return
        if where.leaf == "roster":
            if payload.get("per_door"):
                return  # the credentials come on this door's own state/roster/<node>/<part>
            roster = Roster(payload, self.node_id)  # a gateway of the plain contract: the whole roster
        elif where.node == self.node_id and "part" in payload:
            roster = self.roster_parts.add(payload)
            if roster is None:
                return  # more parts to come; the last whole roster stays in use
        else:
            return
        self.roster = roster
        log.info("roster version %s: %d staff", roster.version, len(roster))
        self.out(f"roster {roster.version} staff {roster.staff_count} fingers {len(roster.slots())}")

    # -- credentials --------------------------------------------------------------
    def _on_card(self, uid: str) -> None:
        self.credential("card", normalise_uid(uid))

    def _on_finger(self, slot: int | None, score: int | None) -> None:
        if slot is None:
            self._refuse_finger()
        else:
            self.credential("finger", str(slot), score)

    def _refuse_finger(self) -> None:
        with self._lock:
            self.counts["refused"] += 1
            self._give(self.feedback.refused, gpio.Feedback.REFUSED_S)
            self.out("feedback refused finger - -")

    def credential(self, method: str, credential: str, match_score: int | None = None) -> str:
        """Resolve, record, then give feedback; returns the pattern given."""
        with self._lock:
            roster = self.roster
            person = roster.by_card(credential) if method == "card" else roster.by_slot(int(credential))
            staff_id = person.staff_id if person else None
            key = staff_id or f"{method}:{credential}"
            now = time.monotonic()
            last = self._last_seen.get(key)
            if last is not None and now - last < self.repeat_window_s:
                # Already recorded a moment ago: acknowledge, do not count twice.
                pattern = "repeat" if person else "refused"
                self._give(self.feedback.repeat if person else self.feedback.refused, gpio.Feedback.REPEAT_S)
                self.counts[pattern] += 1
                self.out(f"feedback {pattern} {method} {credential} {staff_id or '-'} -")
                return pattern
            try:
                event = self.runtime.record("attendance", {
                    "method": method, "credential": credential, "staff_id": staff_id,
                    "match_score": match_score,
                })
            except Exception as e:  # OutboxError (full disk, broken storage): no green
                log.error("could not store the %s %s: %s", method, credential, e)
                self._give(self.feedback.error, gpio.Feedback.ERROR_S)
                self.counts["error"] += 1
                self.out(f"feedback error {method} {credential} {staff_id or '-'} -")
                return "error"
            self._last_seen[key] = now
            if len(self._last_seen) > 2000:
                self._forget_old(now)
            if person:
                pattern, duration = "accepted", gpio.Feedback.ACCEPTED_S
                self._give(self.feedback.accepted, duration)
            else:
                # An unknown card is still an event (staff_id null): the
                # office can assign the card later and the tap counts.
                pattern, duration = "refused", gpio.Feedback.REFUSED_S
                self._give(self.feedback.refused, duration)
            self.counts[pattern] += 1
            suffix = ""
            if not event["clock_synced"]:
                self._clock_warning_after(duration)
                suffix = " clock_unsynced"
            self.out(f"feedback {pattern} {method} {credential} {staff_id or '-'} {event['event_id']}{suffix}")
            return pattern

    def _give(self, pattern: Callable[[], None], duration: float) -> None:
        self._pattern += 1
        try:
            pattern()
        except Exception:
            log.exception("feedback failed")  # a broken LED never loses the event

    def _clock_warning_after(self, delay: float) -> None:
        """The clock warning after the main pattern, unless a newer one started meanwhile."""
        mine = self._pattern

        def later() -> None:
            with self._lock:
                if self._pattern == mine:
                    self._give(self.feedback.clock_warning, 0)

        t = threading.Timer(delay, later)
        t.daemon = True
        t.start()

    def _forget_old(self, now: float) -> None:
        self._last_seen = {k: t for k, t in self._last_seen.items() if now - t < self.repeat_window_s}


def run(settings: Settings) -> None:
    """Run the door until SIGTERM or Ctrl-C."""
    import signal

    node = AttendanceNode(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    node.start()
    if node.emulator is not None:
        # A door on a laptop: the emulated module's console on stdin
        # ("place NV001", "lift", "tap NV001"; see congso emulate fingerprint).
        from congso.devices.fingerprint.emulator import console

        threading.Thread(target=console, args=(node.emulator, sys.stdin, lambda s: print(s, flush=True)),
                         daemon=True, name="emulator-console").start()
    log.info("door %s running (roster version %s)", node.node_id, node.roster.version)
    watchdog.ready(f"door {node.node_id} running")
    dog = watchdog.Watchdog()
    stuck_logged = False
    try:
        while not stop.wait(1.0):
            # Fed only while both credential loops go round: a stuck door is
            # restarted by systemd instead of ignoring staff.
            stuck = node.alive()
            if stuck is None:
                dog.ping()
            elif not stuck_logged:
                log.error("%s: no longer feeding the watchdog", stuck)
            stuck_logged = stuck is not None
    finally:
        node.stop()
        log.info("door %s stopped", node.node_id)
