"""``congso signage run``: the waiting-hall TV.

One render loop owns the screen. Several times a second (``[signage]
check_hz``) it builds the frame from the state it holds (pure functions in
``pages``) and the ``Renderer`` draws only when the instructions differ from
the last ones, so an idle board costs a comparison of two lists. The footer
ticker is a strip of its own (a subsurface with its own renderer): when it
steps, only the strip is redrawn, at ``ticker_hz``.

Offline: the last good state of each board is kept on disk by the node
runtime and drawn from the very first frame at boot. While the broker is
unreachable the header says "Mất kết nối · Cập nhật lúc HH:MM" with a red
dot; the data stays on screen.

Gateway gone: the TV also watches the gateway's heartbeat (its health,
every ``[health] interval_s``). With the broker up but no heartbeat for
max(``[signage] stale_after_s``, 2.5 x the gateway's interval_s), the
board is not current: the header says "Cập nhật lúc HH:MM" (the last
heartbeat) until heartbeats return.

Alive: the loop pings the systemd watchdog and records when it last ran
(``last_frame_age_s`` in health), so a frozen screen restarts the service
and shows on the technician's ``congso nodes``.
"""

from __future__ import annotations

import base64
import logging
import queue
import signal
import threading
import time
from datetime import datetime
from pathlib import Path

from ..protocol import clock, messages, topics, watchdog
from ..protocol.node import NodeRuntime
from ..protocol.statecache import write_atomic
from . import pages
from .cec import Cec, PowerControl, Schedule

log = logging.getLogger(__name__)

BOARD_STATES = ("dossiers", "calendar", "announcements", "ratings", "urgent", "kpi")
OFFLINE_GRACE_S = 5.0  # a reconnect blip does not flash the offline mark
PRESENT_EVERY_S = 5.0  # shown again even when unchanged: a re-plugged TV gets a picture
POWER_TICK_S = 5.0


def parse_pages(entries: list[str], default_s: float) -> list[tuple[str, float]]:
    out = []
    for entry in entries:
        name, _, secs = entry.partition(":")
        name = name.strip()
        if name not in pages.PAGE_NAMES:
            raise ValueError(f"[signage] pages: unknown page {name!r}; known: {', '.join(pages.PAGE_NAMES)}")
        try:
            seconds = float(secs) if secs.strip() else float(default_s)
        except ValueError:
            raise ValueError(f"[signage] pages: {entry!r} must be name or name:seconds") from None
        if seconds <= 0:
            raise ValueError(f"[signage] pages: {entry!r} needs a positive duration")
        out.append((name, seconds))
    if not out:
        raise ValueError("[signage] pages is empty: list at least one of " + ", ".join(pages.PAGE_NAMES))
    return out


class Rotation:
    """Which page is on screen: each slot stays its page's duration, then the next with data."""

    def __init__(self, durations: dict[str, float]):
        self.durations = durations
        self.current: tuple | None = None
        self.started = 0.0

    def pick(self, slots: list[tuple], mono: float) -> tuple | None:
        if not slots:
            self.current = None
            return None
        if self.current not in slots:
            # First frame, or the page's data changed shape: the same page
            # if it still has slots, else the first.
            same = [s for s in slots if self.current and s[0] == self.current[0]]
            self.current, self.started = (same[0] if same else slots[0]), mono
        elif mono - self.started >= self.durations.get(self.current[0], 15.0):
            self.current = slots[(slots.index(self.current) + 1) % len(slots)]
            self.started = mono
        return self.current

    def reset(self) -> None:
        self.current = None


class SignageApp:
    def __init__(self, settings, screenshot_dir: str | None = None):
        s = settings.signage
        self.settings = settings
        self.tz = settings.site.timezone
        self.desk = s.desk.strip()
        self.dossier_url = s.dossier_url
        page_list = parse_pages(list(s.pages), s.page_s)
        self.page_names = [n for n, _ in page_list]
        self.rotation = Rotation(dict(page_list))
        self.power = PowerControl(Schedule.from_settings(s), Cec(s.cec, s.cec_device, int(s.cec_tries), float(s.cec_retry_s)))
        self.check_hz = max(0.5, float(s.check_hz))
        self.ticker_hz = max(0.0, float(s.ticker_hz))
        self.ticker_speed = float(s.ticker_speed)
        self.stale_after_s = float(s.stale_after_s)
        self.screenshot_dir = Path(screenshot_dir) if screenshot_dir else None

        self.runtime = NodeRuntime(settings, kind="signage", keep_state=True, on_state=self._on_state,
                                   devices=self._devices, extra_health=self._health)
        self.runtime.commands.update(screenshot=self._cmd_screenshot, display_power=self._cmd_display_power,
                                     reload=self._cmd_reload, identify=self._cmd_identify)
        self._lock = threading.Lock()
        self.states: dict[str, dict] = {}
        self.fresh_at: datetime | None = None  # when the data was last known to be current
        self._load_cache()
        # The gateway's heartbeat, read on the same link (docs/signage.md).
        self._gw_health_topic = topics.health(self.runtime.site, topics.GATEWAY_ID)
        self._gw_seen_at: datetime | None = None  # wall time of the last heartbeat
        self._gw_seen_mono: float | None = None
        self._gw_interval_s = 0.0
        self._connected_since: float | None = None
        self.runtime.link.subscriptions.append((self._gw_health_topic, 0))
        runtime_handler = self.runtime.link.handler

        def handle(item) -> None:
            if item.topic == self._gw_health_topic:
                self._on_gateway_health(item.payload)
            elif runtime_handler is not None:
                runtime_handler(item)
        self.runtime.link.handler = handle

        self.display = None
        self._stop = threading.Event()
        self._power_wake = threading.Event()
        self._requests: "queue.Queue[tuple]" = queue.Queue()
        self._loop_at = time.monotonic()
        self._disconnected_at = time.monotonic()
        self._identify_until = 0.0
        self._ticker_width: dict[str, int] = {}
        self._last_file_shot = 0.0
        self.screen_on = self.power.wanted(clock.now(self.tz))

    # -- state ----------------------------------------------------------------------
    def _load_cache(self) -> None:
        cached = self.runtime.cached_state()
        state_dir = self.settings.data_dir / "state"
        with self._lock:
            for name in BOARD_STATES:
                if name in cached:
                    self.states[name] = cached[name]
                    try:
                        at = datetime.fromtimestamp((state_dir / f"{name}.json").stat().st_mtime, clock.zone(self.tz))
                        self.fresh_at = max(self.fresh_at, at) if self.fresh_at else at
                    except OSError:
                        pass
        if self.states:
            log.info("drawing the kept state from disk: %s", ", ".join(sorted(self.states)))

    def _on_state(self, where, payload) -> None:
        if where.kind != "state" or where.leaf not in BOARD_STATES or payload is None:
            return
        with self._lock:
            self.states[where.leaf] = payload
            self.fresh_at = clock.now(self.tz)

    def _on_gateway_health(self, payload: bytes) -> None:
        try:
            health = messages.decode("health", payload)
        except messages.MessageError as e:
            self.runtime.rejects.reject("gateway", self._gw_health_topic, str(e))
            return
        with self._lock:
            self._gw_seen_at = clock.now(self.tz)
            self._gw_seen_mono = time.monotonic()
            self._gw_interval_s = float(health.get("interval_s") or 0.0)

    def gateway_silence_limit(self) -> float:
        """How long without a heartbeat before the board is not current: a
        gateway whose interval is longer than stale_after_s is not stale
        between two of its heartbeats."""
        return max(self.stale_after_s, 2.5 * self._gw_interval_s)

    def view(self, now: datetime, mono: float) -> pages.View:
        connected = self.runtime.link.connected.is_set()
        with self._lock:
            if connected:
                self._disconnected_at = mono
                if self._connected_since is None:
                    self._connected_since = mono
                limit = self.gateway_silence_limit()
                if self._gw_seen_mono is not None:
                    gateway_alive = mono - self._gw_seen_mono <= limit
                else:  # none yet since the connect: the gateway gets the limit to speak
                    gateway_alive = mono - self._connected_since <= limit
                if self.states and gateway_alive:
                    self.fresh_at = now
                elif self.states and self._gw_seen_at is not None:
                    self.fresh_at = self._gw_seen_at  # current as of the last heartbeat
            else:
                self._connected_since = None
            states = dict(self.states)
            fresh_at = self.fresh_at
        offline = not connected and mono - self._disconnected_at > OFFLINE_GRACE_S
        stale = fresh_at is None or (now - fresh_at).total_seconds() > self.stale_after_s
        return pages.View(site_name=self.settings.site.name, now=now, states=states,
                          clock_synced=self.runtime.clock.synced(), offline=offline,
                          updated_at=fresh_at, stale=stale and bool(states), node_id=self.runtime.node_id,
                          desk=self.desk, dossier_url=self.dossier_url)

    # -- health and commands ------------------------------------------------------------
    def _devices(self) -> dict:
        display = self.display.status if self.display is not None and self.display.status else "missing"
        cec = "missing" if not self.power.cec.available else ("error" if self.power.cec.last_error else "ok")
        return {"display": display, "cec": cec}

    def _health(self) -> dict:
        return {"last_frame_age_s": round(time.monotonic() - self._loop_at, 2),
                "screen_on": self.screen_on, "page": self.rotation.current[0] if self.rotation.current else None}

    def _on_render_thread(self, what: str, arg, timeout: float = 10.0):
        done = threading.Event()
        box: dict = {}
        self._requests.put((what, arg, done, box))
        if not done.wait(timeout):
            raise RuntimeError(f"the render loop did not answer within {timeout:.0f} s (frozen?)")
        if "error" in box:
            raise RuntimeError(box["error"])
        return box["result"]

    def _cmd_screenshot(self, args: dict) -> dict:
        max_width = args.get("max_width")
        if max_width is not None and (not isinstance(max_width, int) or isinstance(max_width, bool) or max_width < 16):
            raise ValueError("max_width must be a whole number of pixels, at least 16")
        return self._on_render_thread("screenshot", max_width)

    def _cmd_display_power(self, args: dict) -> dict:
        on = args.get("on")
        if not isinstance(on, bool):
            raise ValueError('display_power needs {"on": true} or {"on": false}')
        result = self.power.set_override(on, clock.now(self.tz))
        self.screen_on = on
        return result

    def _cmd_reload(self, args: dict) -> dict:
        self._load_cache()
        return self._on_render_thread("reload", None)

    def _cmd_identify(self, args: dict) -> dict:
        self._identify_until = time.monotonic() + 10.0
        return {"seconds": 10}

    def _serve_requests(self, main_renderer, footer_renderer) -> None:
        while True:
            try:
                what, arg, done, box = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                if what == "screenshot":
                    png = self.display.screenshot_png(arg)
                    w, h = self.display.size
                    if arg and w > arg:
                        w, h = arg, max(1, round(h * arg / w))
                    box["result"] = {"png_base64": base64.b64encode(png).decode("ascii"), "width": w, "height": h}
                elif what == "reload":
                    main_renderer.force()
                    footer_renderer.force()
                    self.rotation.reset()
                    box["result"] = {"states": sorted(self.states)}
            except Exception as e:  # a command never crashes the node
                box["error"] = str(e)
            done.set()

    # -- loops --------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())

    def stop(self) -> None:
        self._stop.set()

    def _power_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.screen_on = self.power.tick(clock.now(self.tz))
            except Exception:
                log.exception("power schedule failed; will retry")
            self._power_wake.wait(POWER_TICK_S)
            self._power_wake.clear()

    def run(self) -> int:
        from ..devices.display import Display
        from ..ui import Renderer

        self.display = Display.open(self.settings.display)
        w, h = self.display.size
        fh = pages.footer_height((w, h))
        main_surface = self.display.surface.subsurface((0, 0, w, h - fh))
        footer_surface = self.display.surface.subsurface((0, h - fh, w, fh))
        font = None
        try:
            from ..devices.display import find_font

            font = find_font(self.settings.display.font)
        except Exception as e:
            log.error("%s", e)
            raise
        import pygame

        pygame.font.init()  # Renderer.measure (the ticker's width) may come before any draw
        main_r, footer_r = Renderer(main_surface, font), Renderer(footer_surface, font)
        self.runtime.start()
        threading.Thread(target=self._power_loop, name="power", daemon=True).start()
        dog = watchdog.Watchdog()
        last_present = 0.0
        ready_sent = False
        shot_pending = False
        log.info("signage %s on %s %dx%d; pages %s; cec %s", self.runtime.node_id, self.display.driver, w, h,
                 ", ".join(self.page_names), self.power.cec.backend)
        try:
            while not self._stop.is_set():
                mono = time.monotonic()
                drew = self.render_once(main_r, footer_r, (w, h), mono)
                if drew or mono - last_present >= PRESENT_EVERY_S:
                    self.display.present()
                    last_present = mono
                shot_pending = shot_pending or drew
                if shot_pending and self.screenshot_dir is not None and mono - self._last_file_shot >= 0.5:
                    self._write_file_shot(mono, main_r, footer_r)
                    shot_pending = False
                if not ready_sent:
                    watchdog.ready(f"drawing {self.rotation.current[0] if self.rotation.current else 'waiting'}")
                    ready_sent = True
                self._serve_requests(main_r, footer_r)
                dog.ping()
                self._loop_at = time.monotonic()
                rate = self.check_hz
                if self.screen_on and self.ticker_hz and pages.ticker_text(self._last_view):
                    rate = max(rate, self.ticker_hz)
                self._stop.wait(max(0.0, 1.0 / rate - (time.monotonic() - mono)))
        finally:
            watchdog.stopping()
            self.runtime.stop()
            self.display.close()
        return 0

    def render_once(self, main_r, footer_r, size, mono: float) -> bool:
        """Build this moment's frame and draw what changed; True if anything was drawn."""
        now = clock.now(self.tz)
        view = self.view(now, mono)
        self._last_view = view
        if not self.screen_on:
            return main_r.draw(pages.off_frame()) | footer_r.draw(pages.off_frame())
        slot = self.rotation.pick(pages.slots(view, size, self.page_names), mono)
        main = pages.frame(view, size, slot)
        if mono < self._identify_until:
            main = main + pages.identify_overlay(size, self.runtime.node_id)
        text = pages.ticker_text(view)
        offset = 0
        if text:
            font_px = pages.ticker_font(size)
            width = self._ticker_width.get(text)
            if width is None:
                self._ticker_width.clear()  # one text at a time: keep the cache tiny
                width = self._ticker_width[text] = footer_r.measure(text, font_px)[0]
            if self.ticker_hz:
                step = int(mono * self.ticker_hz)
                offset = int(step * pages.ticker_step_px(size, self.ticker_speed, self.ticker_hz))
            else:
                offset = size[0] - pages.px(150, size)  # still: the text starts at the label
        footer = pages.ticker(text, size, offset, width if text else 0)
        if pages.urgent_items(view):
            footer = [pages.Fill(pages.RED)]  # the notice has the whole screen: no ticker under it
        drew_main = main_r.draw(main)
        drew_footer = footer_r.draw(footer)
        return drew_main or drew_footer

    _last_view: pages.View | None = None

    def _write_file_shot(self, mono: float, main_r, footer_r) -> None:
        """screen.png and screen.txt (every text on screen, one per line: greppable from afar)."""
        self._last_file_shot = mono
        try:
            self.screenshot_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self.screenshot_dir / "screen.png", self.display.screenshot_png())
            lines = [d.text.replace("\n", " ") for d in main_r.drawn_text + footer_r.drawn_text]
            write_atomic(self.screenshot_dir / "screen.txt", ("\n".join(lines) + "\n").encode("utf-8"))
        except OSError as e:
            log.warning("could not write the screenshot file: %s", e)
