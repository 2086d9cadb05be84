"""Switching the TV on and off over HDMI-CEC, and when to do it.

``Cec`` is a small device class over pluggable backends, in the manner of
gpiozero: ``cec-ctl`` (v4l-utils; the kernel's CEC framework, /dev/cec0 on
a Raspberry Pi), ``cec-client`` (libcec), or ``none`` (no CEC: the node
draws a black screen instead, which at least shows nothing at night). Every
change is confirmed by asking the TV for its power status and retried with
backoff: TVs ignore a command while they are still waking, and a TV that
says nothing is reported, not assumed.

``Schedule`` says whether the TV should be on: ``[signage] on_hours`` on
``on_days``, never on ``off_dates`` (public holidays). ``PowerControl``
applies it: a ``display_power`` command overrides the schedule until its
next edge (the next time the schedule itself would switch): a TV switched
on for an evening meeting goes back to the schedule at the next on/off
time, and nobody has to remember to undo it.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
BACKENDS = ("auto", "cec-ctl", "cec-client", "none")


class CecError(RuntimeError):
    pass


class Cec:
    """The TV's power over CEC. ``set_power(on)`` returns True once the TV confirms."""

    def __init__(self, backend: str = "auto", device: str = "/dev/cec0", tries: int = 3, retry_s: float = 2.0,
                 run: Callable = subprocess.run, sleep: Callable[[float], None] = time.sleep):
        if backend not in BACKENDS:
            raise ValueError(f"[signage] cec must be one of {', '.join(BACKENDS)}; got {backend!r}")
        if backend == "auto":
            backend = "cec-ctl" if shutil.which("cec-ctl") else ("cec-client" if shutil.which("cec-client") else "none")
        elif backend != "none" and not shutil.which(backend):
            raise ValueError(f"[signage] cec = {backend} but {backend} is not installed "
                             f"(apt install {'v4l-utils' if backend == 'cec-ctl' else 'cec-utils'})")
        self.backend = backend
        self.device = device
        self.tries = max(1, tries)
        self.retry_s = retry_s
        self._run = run
        self._sleep = sleep
        self._configured = False
        self.last_error = ""

    @property
    def available(self) -> bool:
        return self.backend != "none"

    def _cmd(self, args: list[str], stdin: str | None = None) -> str:
        try:
            out = self._run(args, input=stdin, capture_output=True, text=True, timeout=15)
        except (OSError, subprocess.SubprocessError) as e:
            raise CecError(f"{args[0]}: {e}") from None
        if out.returncode != 0:
            raise CecError(f"{' '.join(args)} exited {out.returncode}: {(out.stderr or out.stdout).strip()[:200]}")
        return out.stdout

    def _ctl(self, *args: str) -> str:
        if not self._configured:
            # Register as a playback device once, so the TV accepts our messages.
            self._cmd(["cec-ctl", "-d", self.device, "--playback", "--osd-name", "congso"])
            self._configured = True
        return self._cmd(["cec-ctl", "-d", self.device, *args])

    def _client(self, line: str) -> str:
        return self._cmd(["cec-client", "-s", "-d", "1"], stdin=line + "\n")

    def power_status(self) -> str | None:
        """"on", "standby", "to-on", "to-standby", or None when the TV does not answer."""
        if self.backend == "cec-ctl":
            text = self._ctl("--to", "0", "--give-device-power-status")
            m = re.search(r"pwr-state:\s*([\w -]+?)\s*\(", text)
            state = m.group(1).strip() if m else ""
        elif self.backend == "cec-client":
            text = self._client("pow 0")
            m = re.search(r"power status:\s*([\w -]+)", text)
            state = m.group(1).strip() if m else ""
        else:
            return None
        return {"on": "on", "standby": "standby", "in transition standby to on": "to-on",
                "in transition on to standby": "to-standby"}.get(state)

    def set_power(self, on: bool) -> bool:
        """Switch the TV; True once it reports the new state. Never raises."""
        if not self.available:
            return False
        want = "on" if on else "standby"
        delay = self.retry_s
        for attempt in range(1, self.tries + 1):
            try:
                if self.backend == "cec-ctl":
                    self._ctl("--to", "0", "--image-view-on" if on else "--standby")
                else:
                    self._client("on 0" if on else "standby 0")
                self._sleep(delay / 2)  # a TV needs a moment before it answers truthfully
                state = self.power_status()
                if state == want or state == ("to-on" if on else "to-standby"):
                    self.last_error = ""
                    log.info("TV %s (cec %s, try %d)", want, self.backend, attempt)
                    return True
                self.last_error = f"TV reports {state or 'nothing'} after asking for {want}"
            except CecError as e:
                self.last_error = str(e)
            log.warning("CEC %s try %d/%d: %s", want, attempt, self.tries, self.last_error)
            if attempt < self.tries:
                self._sleep(delay)
                delay *= 2
        return False


def _hours(text: str) -> tuple[dtime, dtime]:
    m = re.match(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", text or "")
    if not m:
        raise ValueError(f"[signage] on_hours must look like 07:00-17:30, got {text!r}")
    a = dtime(int(m[1]), int(m[2]))
    b = dtime.max if (int(m[3]), int(m[4])) == (24, 0) else dtime(int(m[3]), int(m[4]))  # 00:00-24:00: all day
    if b <= a:
        raise ValueError(f"[signage] on_hours must end after it starts, got {text!r}")
    return a, b


@dataclass(frozen=True)
class Schedule:
    start: dtime
    end: dtime
    days: frozenset[int]  # 0 = Monday
    off_dates: frozenset[date]

    @classmethod
    def from_settings(cls, s) -> "Schedule":
        start, end = _hours(s.on_hours)
        days = set()
        for d in s.on_days:
            if d.strip().lower() not in DAYS:
                raise ValueError(f"[signage] on_days: {d!r} is not a day name (monday ... sunday)")
            days.add(DAYS.index(d.strip().lower()))
        try:
            off = frozenset(date.fromisoformat(x.strip()) for x in s.off_dates)
        except ValueError as e:
            raise ValueError(f"[signage] off_dates must be dates like 2026-09-02: {e}") from None
        return cls(start, end, frozenset(days), off)

    def on_day(self, d: date) -> bool:
        return d.weekday() in self.days and d not in self.off_dates

    def is_on(self, now: datetime) -> bool:
        return self.on_day(now.date()) and self.start <= now.time() < self.end

    def next_edge(self, now: datetime) -> datetime:
        """The next moment the schedule switches (within two weeks; else two weeks away)."""
        for n in range(0, 15):
            d = now.date() + timedelta(days=n)
            if not self.on_day(d):
                continue
            for t in (self.start, self.end):
                at = datetime.combine(d, t, now.tzinfo)
                if at > now:
                    return at
        return now + timedelta(days=14)


class PowerControl:
    """Keeps the TV as the schedule (or an override) wants; ``tick(now)`` from a slow loop."""

    RETRY_UNCONFIRMED_S = 300.0  # a TV that never confirmed is asked again this often, not every tick

    def __init__(self, schedule: Schedule, cec: Cec):
        self.schedule = schedule
        self.cec = cec
        self.override: tuple[bool, datetime] | None = None  # (on, until)
        self.applied: bool | None = None  # what we last switched the TV to (None: not yet)
        self.confirmed = False
        self._tried_at: datetime | None = None
        self._lock = threading.Lock()

    def wanted(self, now: datetime) -> bool:
        if self.override and now < self.override[1]:
            return self.override[0]
        return self.schedule.is_on(now)

    def set_override(self, on: bool, now: datetime) -> dict:
        until = self.schedule.next_edge(now)
        self.override = (on, until)
        self.tick(now)
        return {"on": on, "until": until.isoformat(timespec="seconds"), "cec": self.cec.backend,
                "confirmed": self.confirmed}

    def tick(self, now: datetime) -> bool:
        """Apply what is wanted now; returns it (True: on). Retries an unconfirmed switch each tick."""
        with self._lock:
            if self.override and now >= self.override[1]:
                self.override = None
            want = self.wanted(now)
            retry = (self.cec.available and not self.confirmed and self._tried_at is not None
                     and (now - self._tried_at).total_seconds() >= self.RETRY_UNCONFIRMED_S)
            if want != self.applied or retry:
                self._tried_at = now
                self.confirmed = self.cec.set_power(want)
                if self.applied != want:
                    log.info("display %s (%s)", "on" if want else "off",
                             "override" if self.override else "schedule")
                self.applied = want
            return want


def check(settings) -> list:
    """``congso selftest --role signage``: can this TV be switched over HDMI-CEC?"""
    from ..devices import CheckResult

    s = settings.signage
    try:
        cec = Cec(s.cec, s.cec_device, tries=1)
    except ValueError as e:
        return [CheckResult("hdmi-cec", False, str(e), "apt install v4l-utils (cec-ctl) or cec-utils (cec-client)")]
    if not cec.available:
        # The documented fallback: outside office hours the screen is drawn black.
        why = "not used ([signage] cec = none)" if s.cec == "none" else "neither cec-ctl nor cec-client is installed"
        return [CheckResult("hdmi-cec", True, f"{why}: outside office hours the screen is drawn black, the TV stays on",
                            "" if s.cec == "none" else "to switch the TV off at night: apt install v4l-utils")]
    if cec.backend == "cec-ctl" and not Path(cec.device).exists():
        return [CheckResult("hdmi-cec", False, f"{cec.device} does not exist",
                            "Raspberry Pi: dtoverlay=vc4-kms-v3d (KMS exposes /dev/cec0); check [signage] cec_device")]
    try:
        state = cec.power_status()
    except CecError as e:
        return [CheckResult("hdmi-cec", False, f"{cec.backend}: {e}", "is the TV's HDMI-CEC (Anynet+, Bravia Sync, SimpLink...) enabled?")]
    if state is None:
        return [CheckResult("hdmi-cec", False, f"{cec.backend}: the TV does not answer a power-status request",
                            "enable HDMI-CEC in the TV's menu (Anynet+, Bravia Sync, SimpLink...) and use the HDMI port that has it")]
    return [CheckResult("hdmi-cec", True, f"{cec.backend} on {cec.device}: the TV reports {state}", "")]
