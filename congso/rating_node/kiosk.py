"""The kiosk's behaviour as a state machine, without pygame, GPIO or MQTT.

Inputs: ``press(index)`` (a level chosen: a GPIO button, or a touch on a
level button), ``touch(action)`` (a touch on anything the screen shows),
``set_session(payload)`` and ``tick()`` as time passes. Output: ``view()``,
the plain data the screens draw, and calls to ``commit(fields)``, which
must durably store the vote (``NodeRuntime.record``) and raise if it could
not. Times are ``time.monotonic()`` seconds, passed in so tests and the
bench control them.

The flow:

    idle --level--> (dissatisfied and ask_reasons) reasons --Gửi/timeout--> commit
    idle --level--> commit
    commit --ok--> thanks (thanks_s) --> idle, locked until lockout_s after the commit
    commit --failed--> error (thanks_s) --> idle; nothing counted, nothing locked

Rules:

- The thank-you comes only after ``commit`` returned: once the citizen
  saw it, the vote is on disk.
- One input, one press: a press within ``press_guard_s`` of an accepted
  press is the same press (a touch and a button together, a bouncing
  contact, a touch and the mouse event SDL makes from it).
- Lockout: for ``lockout_s`` after a commit every press is ignored (the
  idle screen says "please wait") and counted. A vote whose level press
  comes within ``burst_window_s`` after a lockout that swallowed at least
  ``burst_presses`` presses is sent with ``"burst": true``.
- Desk sessions: a vote while a session is open (not expired, not used)
  carries its session_id, officer_id and dossier_code; the session is then
  used: the next vote counts for the desk alone, until the gateway opens a
  new session. Used ids are remembered across restarts (``on_used``).
- The officer on duty (``set_duty``: who holds the desk, from a card tap
  or ``state/duty``): a vote outside a session carries their
  ``officer_id``; a session's officer wins for the session's vote.
- A scanned dossier code (``scan``) is shown and tied to the next vote
  (unless the session names its own), until that vote or ``scan_hold_s``.
- A notice (``notify``: the officer took or left the desk, a bad scan)
  covers the idle screen for ``notice_s``; presses meanwhile are ignored
  (the buttons are not on screen).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from ..protocol import messages
from ..vocab.levels import UNSATISFIED_CODES, Level

log = logging.getLogger(__name__)

IDLE, REASONS, THANKS, ERROR = "idle", "reasons", "thanks", "error"
BAD_SCAN = "Mã không hợp lệ, vui lòng quét lại"


@dataclass(frozen=True)
class Rules:
    lockout_s: float = 5.0
    thanks_s: float = 3.0
    ask_reasons: bool = True
    reasons_timeout_s: float = 20.0
    burst_presses: int = 3
    burst_window_s: float = 10.0
    press_guard_s: float = 0.3
    scan_hold_s: float = 120.0          # a scanned code waits this long for its vote
    notice_s: float = 2.0               # "Đã nhận quầy", "Mã không hợp lệ ..."

    @classmethod
    def from_settings(cls, rating) -> "Rules":
        return cls(float(rating.lockout_s), float(rating.thanks_s), bool(rating.ask_reasons),
                   float(rating.reasons_timeout_s), int(rating.burst_presses), float(rating.burst_window_s),
                   float(rating.press_guard_s))


@dataclass(frozen=True)
class View:
    """Everything a screen shows; screens are pure functions of it."""

    screen: str
    levels: tuple[Level, ...]
    desk_id: str
    officer_name: str | None = None
    dossier_code: str | None = None
    locked: bool = False
    chosen: int | None = None          # index of the level chosen (reasons, thanks)
    ticked: frozenset[str] = frozenset()
    reasons_left_s: int | None = None
    clock_synced: bool = True
    online: bool = True
    identify: bool = False              # flashing phase on
    error: str = ""
    desk_name: str = ""                 # what citizens call the desk; "" shows "Quầy <desk_id>"
    duty_name: str | None = None        # the officer holding the desk (nhận quầy), outside a session
    notice: str = ""                    # a short message covering the idle screen
    notice_kind: str = ""               # "duty" or "warn": its colour
    notice_detail: str = ""             # a second, smaller line (the officer's name)


@dataclass
class Kiosk:
    levels: tuple[Level, ...]
    desk_id: str
    commit: Callable[[dict], dict]
    rules: Rules = field(default_factory=Rules)
    wall: Callable[[], datetime] = datetime.now  # aware "now" for session expiry
    on_used: Callable[[set[str]], None] = lambda used: None
    used: set[str] = field(default_factory=set)
    desk_name: str = ""

    screen: str = IDLE
    chosen: int | None = None
    ticked: set[str] = field(default_factory=set)
    session: dict | None = None
    votes: int = 0                      # committed since start
    ignored: int = 0                    # presses swallowed by the guard or the lockout
    _source: str = "touch"
    _burst: bool = False
    _screen_until: float = 0.0          # end of thanks/error, or of the reasons timeout
    _lockout_until: float = float("-inf")
    _last_accept: float = float("-inf")
    _lockout_presses: int = 0           # ignored during the current/last lockout
    _error: str = ""
    duty: dict | None = None            # {officer_id, officer_name} holding the desk, or None
    scanned: str | None = None          # a dossier code scanned for the next vote
    _scanned_until: float = 0.0
    _notice: tuple[str, str, float, str] = ("", "", 0.0, "")   # text, kind, until, detail

    # -- inputs -----------------------------------------------------------------
    def set_session(self, payload: dict | None) -> None:
        """The retained ``state/desk/<desk>`` of this desk (None: cleared)."""
        if payload is not None and payload.get("desk_id") != self.desk_id:
            return
        self.session = payload

    def set_duty(self, holder: dict | None) -> None:
        """Who holds this desk now ({officer_id, officer_name}), None: nobody."""
        self.duty = holder

    def scan(self, code: str | None, now: float) -> str:
        """A scan read as a dossier code (None: not one). Returns what happened."""
        if code is None:
            self.notify(BAD_SCAN, "warn", now)
            return "bad scan"
        self.scanned, self._scanned_until = code, now + self.rules.scan_hold_s
        return "scanned"

    def notify(self, text: str, kind: str, now: float, detail: str = "") -> None:
        self._notice = (text, kind, now + self.rules.notice_s, detail)

    def press(self, index: int, now: float, source: str = "button") -> str:
        """A level chosen by button or touch. Returns what happened (for logs and tests)."""
        self.tick(now)
        if not self._accept(now):
            return "ignored"
        if self.screen == REASONS:
            # A physical button on the reasons screen: send with what is ticked
            # (a kiosk with buttons only must not wait for the timeout).
            return self._commit(now)
        if self.screen != IDLE or not 0 <= index < len(self.levels):
            return "ignored"
        self.chosen, self._source = index, source
        self._burst = (self._lockout_presses >= self.rules.burst_presses
                       and now - self._lockout_until <= self.rules.burst_window_s)
        if self.levels[index].code in UNSATISFIED_CODES and self.rules.ask_reasons:
            self.screen, self.ticked = REASONS, set()
            self._screen_until = now + self.rules.reasons_timeout_s
            return "reasons"
        return self._commit(now)

    def touch(self, action: str | None, now: float) -> str:
        """A touch on the screen; ``action`` from the layout's hit test (None: on nothing)."""
        self.tick(now)
        if action and action.startswith("level:"):
            return self.press(int(action.split(":", 1)[1]), now, source="touch")
        if self.screen != REASONS:
            if action is None and self._locked(now):
                self._count_ignored()  # a hand slapping the screen during the lockout
            return "ignored"
        if action is None:
            return "ignored"
        # Ticking is not a vote: no guard against fast ticks, but each touch
        # restarts the reasons timeout (the citizen is reading).
        self._screen_until = now + self.rules.reasons_timeout_s
        if action.startswith("reason:"):
            code = action.split(":", 1)[1]
            self.ticked.symmetric_difference_update({code})
            return "ticked"
        if action == "send":
            if now - self._last_accept < self.rules.press_guard_s:
                return "ignored"
            return self._commit(now)
        if action == "back":
            self.screen, self.chosen, self.ticked = IDLE, None, set()
            return "back"
        return "ignored"

    def tick(self, now: float) -> None:
        """Let time pass: the reasons timeout sends, thanks and errors end."""
        if self.screen == REASONS and now >= self._screen_until:
            self._commit(now)
        elif self.screen in (THANKS, ERROR) and now >= self._screen_until:
            self.screen, self.chosen, self.ticked = IDLE, None, set()
        if self.session is not None and self._expired(self.session):
            self.session = None
        if self.scanned is not None and now >= self._scanned_until:
            self.scanned = None
        if self._notice[0] and now >= self._notice[2]:
            self._notice = ("", "", 0.0, "")

    # -- outputs -----------------------------------------------------------------
    def current_session(self) -> dict | None:
        s = self.session
        if s is None or s["session_id"] in self.used or self._expired(s):
            return None
        return s

    def view(self, now: float, clock_synced: bool = True, online: bool = True, identify: bool = False) -> View:
        s = self.current_session() if self.screen != THANKS else None
        left = max(0, round(self._screen_until - now)) if self.screen == REASONS else None
        code = (s["dossier_code"] if s else None) or self.scanned
        notice = self._notice if self.screen == IDLE and now < self._notice[2] else ("", "", 0.0, "")
        return View(self.screen, self.levels, self.desk_id,
                    s["officer_name"] if s else None, code,
                    duty_name=None if s else (self.duty or {}).get("officer_name"),
                    notice=notice[0], notice_kind=notice[1], notice_detail=notice[3],
                    locked=self.screen == IDLE and self._locked(now), chosen=self.chosen,
                    ticked=frozenset(self.ticked), reasons_left_s=left, clock_synced=clock_synced,
                    online=online, identify=identify, error=self._error if self.screen == ERROR else "",
                    desk_name=self.desk_name)

    def next_change(self, now: float) -> float | None:
        """The next moment the view changes with no input (to sleep until then)."""
        times = []
        if self.screen in (REASONS, THANKS, ERROR):
            times.append(self._screen_until)
            if self.screen == REASONS:  # the countdown shows whole seconds
                times.append(now + ((self._screen_until - now) % 1.0 or 1.0))
        if self._lockout_until > now:
            times.append(self._lockout_until)
        if self.scanned is not None:
            times.append(self._scanned_until)
        if self._notice[0]:
            times.append(self._notice[2])
        return min(times) if times else None

    # -- internals ------------------------------------------------------------------
    def _locked(self, now: float) -> bool:
        return now < self._lockout_until

    def _expired(self, session: dict) -> bool:
        try:
            return messages.parse_ts(session["expires_at"]) <= self.wall()
        except (KeyError, ValueError):
            return True

    def _count_ignored(self) -> None:
        self.ignored += 1
        self._lockout_presses += 1

    def _accept(self, now: float) -> bool:
        if now - self._last_accept < self.rules.press_guard_s:
            self.ignored += 1  # the same press again (touch + button, bounce)
            return False
        if self._locked(now) or self.screen in (THANKS, ERROR):
            self._count_ignored()
            return False
        if self.screen == IDLE and now < self._notice[2]:
            self.ignored += 1  # the notice covers the buttons
            return False
        self._last_accept = now
        return True

    def _commit(self, now: float) -> str:
        level = self.levels[self.chosen]
        session = self.current_session()
        fields = {
            "desk_id": self.desk_id,
            "level": level.code,
            "reasons": [code for code in _reason_order(self.ticked)] if level.code in UNSATISFIED_CODES else [],
            "session_id": session["session_id"] if session else None,
            # The session's officer for its one vote; else whoever holds the desk.
            "officer_id": session["officer_id"] if session else (self.duty or {}).get("officer_id"),
            "dossier_code": (session["dossier_code"] if session else None) or self.scanned,
            # Additions to the contract (docs/protocol.md):
            "burst": self._burst,
            "source": self._source,
        }
        try:
            self.commit(fields)
        except Exception as e:  # OutboxError, a full disk: say so, count nothing
            log.error("vote not stored: %s", e)
            self.screen, self._error = ERROR, str(e)
            self._screen_until = now + self.rules.thanks_s
            return "error"
        self.votes += 1
        self.scanned = None  # tied to this vote: the next citizen brings their own
        if session:
            self.used.add(session["session_id"])
            self.on_used(self.used)
        self.screen = THANKS
        self._screen_until = now + self.rules.thanks_s
        self._lockout_until = now + self.rules.lockout_s
        self._lockout_presses = 0
        self._burst = False
        return "vote"


def _reason_order(ticked: set[str]) -> list[str]:
    from ..vocab.levels import REASONS

    order = [code for code, _ in REASONS]
    return sorted(ticked, key=lambda c: order.index(c) if c in order else len(order))
