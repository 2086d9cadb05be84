"""``congso rating run``: the kiosk's run loop.

One thread owns pygame (the one calling ``KioskApp.run``): it draws, reads
touches and runs the ``Kiosk`` state machine. Everything else reaches it
through ``call``: GPIO presses (gpiozero's threads), desk sessions (the MQTT
thread) and commands (the runtime's command worker) queue a function and
wake the loop with a pygame user event. Between inputs the loop sleeps in
``pygame.event.wait`` until the next timed change (end of the thank-you,
of the lockout, the reasons countdown) or at most a second, so an idle
kiosk costs almost no CPU, and the renderer draws only when the screen
changed.

The officer's card (``[rating] officer_card``): the reader of ``[card]``
(the door's ``CardReader``, on its own thread) hands each UID to the loop;
``officer_card.DeskDuty`` decides take or leave from ``state/duty``, the
``duty`` event is committed to the outbox, and only then the kiosk shows
"Đã nhận quầy" / "Đã rời quầy" and the holder's name. The barcode scanner
(``scanner``): key events of this loop, or its own evdev device.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import queue
import signal
import threading
import time
from typing import Any, Callable

import pygame

from ..devices import MISSING
from ..devices.cardreader import CardReader
from ..devices.display import Display, DisplayError
from ..protocol import clock, topics, watchdog
from ..protocol import settings as settings_mod
from ..protocol.node import NodeRuntime
from ..protocol.statecache import write_atomic
from ..ui import Renderer
from ..vocab.dossiers import code_in_scan
from ..vocab.levels import ScaleError, scale
from . import screens
from .inputs import KioskButtons, configure_sdl, touch_point
from .kiosk import ERROR, IDLE, REASONS, THANKS, Kiosk, Rules
from .officer_card import DeskDuty
from .scanner import EvdevScanner, KeyEvents, Scans

log = logging.getLogger(__name__)

IDLE_WAKE_S = 1.0          # at least once a second: clock, link and session expiry on screen
USED_SESSIONS_KEPT = 50


class KioskError(RuntimeError):
    """A setting that keeps the kiosk from starting; the message says which and how to fix it."""


def check_settings(settings) -> tuple[str, tuple]:
    """(desk id, levels) or KioskError."""
    desk = settings.rating.desk_id
    if not desk:
        raise KioskError("this kiosk has no desk: set [rating] desk_id (CONGSO_RATING_DESK_ID), e.g. mot-cua-1")
    try:
        topics.check_desk_id(desk)
        levels = scale(settings.rating.levels)
    except (ValueError, ScaleError) as e:
        raise KioskError(str(e)) from None
    for key in ("buttons", "button_leds"):
        pins = list(getattr(settings.gpio, key))
        if pins and len(pins) != len(levels):
            raise KioskError(
                f"[gpio] {key} lists {len(pins)} pins but [rating] levels is {len(levels)}: "
                f"wire one per level, best first ({', '.join(lv.code for lv in levels)}), or leave it empty")
    return desk, levels


class _Call:
    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class KioskApp:
    def __init__(self, settings, pin_factory=None):
        self.settings = settings
        self.desk, levels = check_settings(settings)
        self.pin_factory = pin_factory
        self.tz = settings.site.timezone
        self.runtime = NodeRuntime(settings, kind="rating", devices=self._devices, extra_health=self._health,
                                   on_state=self._on_state, keep_state=True)
        self.runtime.commands.update(screenshot=self._cmd_screenshot, identify=self._cmd_identify,
                                     reload=self._cmd_reload)
        self._used_path = settings.data_dir / "rating-used-sessions.json"
        self._tap_path = settings.data_dir / "rating-duty-tap.json"
        self.kiosk = Kiosk(levels, self.desk, commit=self._commit, rules=Rules.from_settings(settings.rating),
                           wall=lambda: clock.now(self.tz), on_used=self._save_used, used=self._load_used(),
                           desk_name=settings.rating.desk_name)
        self.display: Display | None = None
        self.renderer: Renderer | None = None
        self.buttons: KioskButtons | None = None
        self.screen: screens.Screen | None = None     # the last frame's layout (targets for touches)
        self.ready = threading.Event()                 # first frame drawn, inputs live
        self.frames = 0
        self._calls: "queue.Queue[_Call]" = queue.Queue()
        self._stop = threading.Event()
        self._identify_until = 0.0
        self._identify_from = 0.0
        self._last_loop = time.monotonic()
        self._leds: list[bool] | None = None
        self._wake_type = pygame.event.custom_type()
        # Who holds the desk: from state/duty (the console's take too) whether or not a reader is fitted.
        self.duty = DeskDuty(self.runtime.site, self.desk, is_acked=self._acked)
        self.card: CardReader | None = None
        self.citizen_cards = 0      # taps of cards that are not an officer's for this desk
        self.scans = {"ok": 0, "bad": 0}
        gap_s = settings.rating.scanner_gap_ms / 1000.0
        self.keys = KeyEvents(Scans(gap_s, self._scanned))   # a scanner typing into the screen (SDL)
        self.scanner: EvdevScanner | None = None
        if settings.rating.scanner:
            self.scanner = EvdevScanner(settings.rating.scanner, Scans(gap_s, self._scanned), deliver=self.post)

    # -- from other threads ---------------------------------------------------
    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run ``fn`` on the UI thread and return its result (raises what it raised)."""
        if threading.current_thread() is getattr(self, "_ui_thread", None):
            return fn()
        item = _Call(fn)
        self._calls.put(item)
        self.wake()
        if not item.done.wait(timeout):
            raise TimeoutError(f"the kiosk's screen loop did not answer within {timeout:g} s")
        if item.error is not None:
            raise item.error
        return item.result

    def post(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn`` for the UI thread without waiting (GPIO and MQTT callbacks)."""
        self._calls.put(_Call(fn))
        self.wake()

    def wake(self) -> None:
        try:
            pygame.event.post(pygame.event.Event(self._wake_type))
        except pygame.error:
            pass  # display not open (yet, or any more): the loop's own timeout picks the call up

    def stop(self) -> None:
        self._stop.set()
        self.wake()

    # -- the loop -------------------------------------------------------------
    def run(self) -> int:
        self._ui_thread = threading.current_thread()
        configure_sdl()
        try:
            self.display = Display.open(self.settings.display)
        except (DisplayError, ValueError) as e:
            raise KioskError(f"cannot open the screen: {e}") from None
        pygame.event.set_allowed(None)
        # Key presses stay allowed (KEYDOWN, TEXTINPUT): a USB barcode scanner is a keyboard.
        pygame.event.set_blocked([pygame.MOUSEMOTION, pygame.FINGERMOTION, pygame.FINGERUP, pygame.MOUSEBUTTONUP,
                                  pygame.KEYUP, pygame.TEXTEDITING])
        self.renderer = Renderer(self.display.surface, self.settings.display.font or None)
        if self.settings.gpio.buttons or self.settings.gpio.button_leds:
            self.buttons = KioskButtons(self.settings.gpio, on_press=self._button, pin_factory=self.pin_factory,
                                        guard_s=self.kiosk.rules.press_guard_s)
        kept = self.runtime.cached_state()
        if kept.get(f"desk/{self.desk}"):
            self.kiosk.set_session(kept[f"desk/{self.desk}"])
        if kept.get("duty"):  # who held the desk when we last heard: right after a reboot without network
            self.duty.adopt(kept["duty"])
        self.duty.restore(self._load_json(self._tap_path))  # and our own tap since, if the gateway had not seen it
        self.kiosk.set_duty(self.duty.holder)
        self._start_card_reader()
        if self.scanner is not None:
            self.scanner.start()
        self.runtime.start()
        watchdog.ready("kiosk ready")
        dog = watchdog.Watchdog()
        log.info("kiosk for desk %s: %d levels, display %s %dx%d, %d buttons", self.desk, len(self.kiosk.levels),
                 self.display.driver, *self.display.size, self.buttons.count if self.buttons else 0)
        try:
            while not self._stop.is_set():
                self._frame()
                dog.ping()
                self.ready.set()
                self._wait_and_handle()
        finally:
            log.info("kiosk stopping")
            if self.buttons:
                self.buttons.close()
            if self.card is not None:
                self.card.stop()
            if self.scanner is not None:
                self.scanner.stop()
            self.runtime.stop()
            self.display.close()
            for item in self._drain():
                item.error = RuntimeError("the kiosk stopped")
                item.done.set()
        return 0

    def _frame(self) -> None:
        now = time.monotonic()
        self._last_loop = now
        if self.duty.check_ack(now):
            self.kiosk.set_duty(self.duty.holder)
        self.kiosk.tick(now)
        identify = now < self._identify_until and int((now - self._identify_from) * 2) % 2 == 0
        view = self.kiosk.view(now, clock_synced=self.runtime.clock.synced(),
                               online=self.runtime.link.connected.is_set(), identify=identify)
        self.screen = screens.layout(view, self.display.size)
        if self.renderer.draw(self.screen.instructions):
            self.frames += 1
            self.display.present()
        elif self.display.status != "ok":
            self.display.present()  # lets the display look for a screen again
        self._update_leds(view, now)

    def _next_timeout(self) -> float:
        now = time.monotonic()
        until = now + IDLE_WAKE_S
        change = self.kiosk.next_change(now)
        if change is not None:
            until = min(until, change)
        if self.duty.pending:  # our tap's ack, then the gateway's word
            until = min(until, now + 0.25)
        if now < self._identify_until:
            until = min(until, now + 0.5 - ((now - self._identify_from) % 0.5))
        return max(0.0, until - now)

    def _wait_and_handle(self) -> None:
        timeout_ms = int(self._next_timeout() * 1000)
        first = pygame.event.wait(timeout_ms) if timeout_ms > 0 else pygame.event.poll()
        events = [first] + pygame.event.get()
        for event in events:
            if event.type == pygame.QUIT:
                self._stop.set()
                continue
            if self.keys.handle(event, time.monotonic()):
                continue  # a key: the barcode scanner typing (a person's slow keys come to nothing)
            point = touch_point(event, self.display.size, self._physical_size(), self.display.rotation)
            if point is not None and self.screen is not None:
                action = screens.hit(self.screen, point)
                outcome = self.kiosk.touch(action, time.monotonic())
                log.debug("touch at %s on %s: %s", point, action, outcome)
                self._frame()  # the next touch must hit what is now on screen
        for item in self._drain():
            try:
                item.result = item.fn()
            except BaseException as e:  # handed back to the caller
                item.error = e
            item.done.set()

    def _drain(self) -> list[_Call]:
        items = []
        while True:
            try:
                items.append(self._calls.get_nowait())
            except queue.Empty:
                return items

    def _physical_size(self) -> tuple[int, int]:
        surface = pygame.display.get_surface() if pygame.display.get_init() else None
        return surface.get_size() if surface is not None else self.display.size

    # -- inputs from other threads ------------------------------------------
    def _button(self, index: int) -> None:
        self.post(lambda: log.debug("button %d: %s", index, self.kiosk.press(index, time.monotonic(), "button")))

    def _on_state(self, where: topics.Topic, payload: dict | None) -> None:
        if where.kind == "desk" and where.leaf == self.desk:
            self.post(lambda: self.kiosk.set_session(payload))
        elif where.kind == "state" and where.leaf == "duty":
            self.post(lambda: self._adopt_duty(payload))

    def _adopt_duty(self, payload: dict | None) -> None:
        if self.duty.adopt(payload):
            log.info("desk %s: held by %s (state/duty version %s)", self.desk, self.duty.officer_id or "nobody",
                     self.duty.version)
        self.kiosk.set_duty(self.duty.holder)

    def _acked(self, event_id: str) -> bool:
        try:
            return not self.runtime.outbox.get([event_id])
        except Exception:  # a damaged outbox: we cannot tell, so keep our own view
            return False

    # -- the officer's card ----------------------------------------------------------
    def _start_card_reader(self) -> None:
        if not self.settings.rating.officer_card:
            return
        try:
            self.card = CardReader.from_settings(self.settings, on_card=lambda uid: self.post(lambda: self._card_tap(uid)))
        except ValueError as e:
            raise KioskError(str(e)) from None
        if self.card is None:
            log.warning("[rating] officer_card is on but [card] backend = none: officers cannot take the desk by card")
            return
        self.card.start()

    def _card_tap(self, uid: str) -> str:
        """A card on the reader (the UI thread). Returns what happened (logs and tests)."""
        tap = self.duty.tap(uid)
        if tap.action is None:
            # A citizen's card (a bank card, a chip ID card held near the screen): nothing to
            # record and nothing shown; a message would only make them think a card is needed.
            self.citizen_cards += 1
            log.info("card tap ignored: not an officer's card for desk %s", self.desk)
            return "ignored"
        now = time.monotonic()
        try:
            event = self.runtime.record("duty", {"desk_id": self.desk, "action": tap.action,
                                                 "staff_id": tap.staff_id, "card_hash": tap.card_hash})
        except Exception as e:  # OutboxError, a full disk: say so, change nothing
            log.error("desk %s %s by %s not stored: %s", tap.action, self.desk, tap.staff_id, e)
            self.kiosk.notify("Chưa ghi được, vui lòng chạm thẻ lại", "warn", now)
            return "error"
        # Committed: now the kiosk may show it.
        self.duty.apply(tap, event)
        try:
            write_atomic(self._tap_path, json.dumps(self.duty.snapshot(), ensure_ascii=False).encode())
        except OSError as e:  # the event is safe in the outbox; only the view after a reboot would lag
            log.warning("could not keep the desk tap on disk: %s", e)
        self.kiosk.set_duty(self.duty.holder)
        self.kiosk.notify(screens.TOOK_DESK if tap.action == "take" else screens.LEFT_DESK, "duty", now, tap.name or "")
        log.info("desk %s %s by %s (event %s)", self.desk, "taken" if tap.action == "take" else "left",
                 tap.staff_id, event["event_id"])
        return tap.action

    # -- the barcode scanner ------------------------------------------------------------
    def _scanned(self, text: str) -> None:
        code = code_in_scan(text)
        self.scans["ok" if code else "bad"] += 1
        outcome = self.kiosk.scan(code, time.monotonic())
        log.info("scan: %s%s", outcome, f" {code}" if code else f" ({len(text)} characters)")

    # -- the vote ------------------------------------------------------------
    def _commit(self, fields: dict) -> dict:
        event = self.runtime.record("rating", fields)  # committed: now the thank-you may show
        log.info("vote %s %s (session %s, burst %s)", event["seq"], fields["level"], fields["session_id"], fields["burst"])
        return event

    @staticmethod
    def _load_json(path) -> Any:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def _load_used(self) -> set[str]:
        try:
            return set(json.loads(self._used_path.read_text()))
        except (OSError, ValueError, TypeError):
            return set()

    def _save_used(self, used: set[str]) -> None:
        # Keep the newest few: a used session is cleared by the gateway soon after.
        keep = list(used)[-USED_SESSIONS_KEPT:]
        if len(used) > USED_SESSIONS_KEPT:
            used.intersection_update(keep)
        try:
            write_atomic(self._used_path, json.dumps(keep).encode())
        except OSError as e:
            log.warning("could not remember the used session: %s", e)

    # -- LEDs ------------------------------------------------------------------
    def _update_leds(self, view, now: float) -> None:
        if self.buttons is None or now < self._identify_until:
            return
        n = self.buttons.led_count
        if view.screen == IDLE and not view.locked and not view.notice:
            lit = [True] * n                      # ready: every button lit
        elif view.screen in (REASONS, THANKS) and view.chosen is not None:
            lit = [i == view.chosen for i in range(n)]
        else:
            lit = [False] * n                     # lockout, error: dark
        if lit != self._leds:
            self.buttons.show(lit)
            self._leds = lit

    # -- commands ---------------------------------------------------------------
    def _cmd_screenshot(self, args: dict) -> dict:
        max_width = args.get("max_width")
        if max_width is not None and (not isinstance(max_width, int) or isinstance(max_width, bool) or max_width < 16):
            raise ValueError(f"max_width must be a whole number of pixels, at least 16; got {max_width!r}")

        def shoot():
            png = self.display.screenshot_png(max_width)
            size = pygame.image.load(io.BytesIO(png)).get_size()
            return {"png_base64": base64.b64encode(png).decode("ascii"), "width": size[0], "height": size[1],
                    "screen": self.kiosk.screen, "texts": [d.text for d in self.renderer.drawn_text]}
        return self.call(shoot)

    def _cmd_identify(self, args: dict) -> dict:
        seconds = args.get("seconds", self.settings.rating.identify_s)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 600:
            raise ValueError(f"seconds must be a number from 0 to 600, got {seconds!r}")

        def start():
            now = time.monotonic()
            self._identify_from, self._identify_until = now, now + seconds
            if self.buttons is not None:
                self.buttons.blink_all(seconds)
            self._leds = None  # set again when identify ends
            return {"seconds": seconds}
        return self.call(start)

    def _cmd_reload(self, args: dict) -> dict:
        """Re-read the settings file's [rating] values (levels, lockout, timings) and redraw."""
        fresh = settings_mod.load(self.settings.source)
        desk, levels = check_settings(fresh)
        if desk != self.desk:
            raise ValueError(f"[rating] desk_id changed from {self.desk} to {desk}: restart the kiosk for that")

        if self.buttons is not None and self.buttons.count != len(levels):
            raise ValueError(f"[rating] levels {len(levels)} does not match the {self.buttons.count} buttons wired")

        def apply():
            self.kiosk.rules = Rules.from_settings(fresh.rating)
            if levels != self.kiosk.levels and self.kiosk.screen not in (IDLE, ERROR):
                raise ValueError("a vote is in progress; try again in a few seconds")
            self.kiosk.levels = levels
            self.renderer.force()
            return {"levels": len(levels), "lockout_s": self.kiosk.rules.lockout_s, "thanks_s": self.kiosk.rules.thanks_s}
        return self.call(apply)

    # -- health ------------------------------------------------------------------
    def _devices(self) -> dict[str, str]:
        out = {"display": self.display.status if self.display else MISSING}
        if self.settings.rating.officer_card and self.settings.card.backend != "none":
            out["card"] = self.card.status if self.card else MISSING
        if self.scanner is not None:
            out["scanner"] = self.scanner.status
        if self.buttons is not None:
            out.update(self.buttons.status)
        return out

    def _health(self) -> dict:
        return {"last_frame_age_s": round(max(0.0, time.monotonic() - self._last_loop), 1),
                "screen": self.kiosk.screen, "votes": self.kiosk.votes,
                # Who holds the desk as this kiosk sees it, and what its card reader and scanner saw.
                "on_duty": self.duty.officer_id, "citizen_cards": self.citizen_cards, "barcode_scans": dict(self.scans),
                # So the console lists a new kiosk at its desk before its first vote.
                "desk_id": self.desk}


def run_kiosk(settings) -> int:
    """The ``congso rating run`` process: the app on the main thread, stopped by SIGTERM/SIGINT."""
    app = KioskApp(settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: app.stop())
    return app.run()
