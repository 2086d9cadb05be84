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

Slides (docs/signage.md): picture and video slides' files come from the
console's web server by SHA-256 into an on-disk cache, fetched by a thread
of their own (``media_cache``); a picture is drawn by the renderer, the
next one decoded ahead; a video is handed to ``[signage] video_player``
(``player``) and the screen taken back. Pages and slides keep to their
schedules; with nothing on, the idle page (office name, clock).

Proof of play: each showing of a page, slide or urgent notice becomes one
``play`` event (stamped with its start) when it leaves the screen, written
to the outbox by a thread of its own.

Alive: the loop pings the systemd watchdog and records when it last ran
(``last_frame_age_s`` in health), so a frozen screen restarts the service
and shows on the technician's ``congso nodes``.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import queue
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from ..protocol import clock, messages, topics, watchdog
from ..protocol.node import NodeRuntime
from ..protocol.statecache import write_atomic
from ..vocab.schedule import Schedule as ScheduleT
from ..vocab.schedule import ScheduleError
from . import pages
from .cec import Cec, PowerControl, Schedule
from .media_cache import MediaCache, choose, media_base_url
from .player import VideoPlayer

log = logging.getLogger(__name__)

BOARD_STATES = ("dossiers", "calendar", "announcements", "ratings", "urgent", "kpi")
OFFLINE_GRACE_S = 5.0  # a reconnect blip does not flash the offline mark
PRESENT_EVERY_S = 5.0  # shown again even when unchanged: a re-plugged TV gets a picture
POWER_TICK_S = 5.0
MIN_WAIT_S = 0.02  # the loop never spins, whatever the rotation says
SHOT_EVERY_S = 0.5  # --screenshot-dir: screen.png and screen.txt at most this often


class PageEntry(NamedTuple):
    name: str
    seconds: float
    schedule: ScheduleT | None  # None: always on


def parse_page_entries(entries: list[str], default_s: float) -> list[PageEntry]:
    """``[signage] pages``: each entry ``name[:seconds] [schedule]``, e.g. ``"kpi:20 mon-fri 13:30-17:00"``."""
    out = []
    for entry in entries:
        first, _, rest = str(entry).strip().partition(" ")
        name, _, secs = first.partition(":")
        name = name.strip()
        if name not in pages.PAGE_NAMES:
            raise ValueError(f"[signage] pages: unknown page {name!r}; known: {', '.join(pages.PAGE_NAMES)}")
        try:
            seconds = float(secs) if secs.strip() else float(default_s)
        except ValueError:
            raise ValueError(f"[signage] pages: {entry!r} must be name or name:seconds, "
                             "then a schedule if any (e.g. kpi:20 mon-fri 13:30-17:00)") from None
        if seconds <= 0:
            raise ValueError(f"[signage] pages: {entry!r} needs a positive duration")
        schedule = None
        if rest.strip():
            try:
                schedule = ScheduleT.parse(rest, where=f"[signage] pages: {entry!r}")
            except ScheduleError as e:
                raise ValueError(str(e)) from None
        out.append(PageEntry(name, seconds, schedule))
    if not out:
        raise ValueError("[signage] pages is empty: list at least one of " + ", ".join(pages.PAGE_NAMES))
    return out


def parse_pages(entries: list[str], default_s: float) -> list[tuple[str, float]]:
    """(name, seconds) of each entry (schedules checked, left out: see ``parse_page_entries``)."""
    return [(e.name, e.seconds) for e in parse_page_entries(entries, default_s)]


class Rotation:
    """Which page is on screen: each slot stays its page's duration, then the next with data.

    ``seconds_of(slot)``, when given, decides a slot's time instead (a slide's own ``seconds``)."""

    def __init__(self, durations: dict[str, float], seconds_of=None):
        self.durations = durations
        self.seconds_of = seconds_of
        self.current: tuple | None = None
        self.started = 0.0

    def _duration(self, slot: tuple) -> float:
        if self.seconds_of is not None:
            found = self.seconds_of(slot)
            if found:
                return found
        return self.durations.get(slot[0], 15.0)

    def pick(self, slots: list[tuple], mono: float) -> tuple | None:
        if not slots:
            self.current = None
            return None
        if self.current not in slots:
            # First frame, or the page's data changed shape: the same page
            # if it still has slots, else the first.
            same = [s for s in slots if self.current and s[0] == self.current[0]]
            self.current, self.started = (same[0] if same else slots[0]), mono
        elif mono - self.started >= self._duration(self.current):
            self.current = slots[(slots.index(self.current) + 1) % len(slots)]
            self.started = mono
        return self.current

    def advance(self, slots: list[tuple], mono: float) -> None:
        """On to the slot after the current one at once (a clip ended or could not play)."""
        if self.current in slots and len(slots) > 1:
            self.current = slots[(slots.index(self.current) + 1) % len(slots)]
        else:
            self.current = None
        self.started = mono

    def reset(self) -> None:
        self.current = None

    def due_in(self, mono: float) -> float:
        """Seconds until the current slot's time is up (inf with nothing on)."""
        if self.current is None:
            return float("inf")
        return self.started + self._duration(self.current) - mono


def frame_key(view: pages.View) -> pages.View:
    """The view as the frame functions can tell it apart: to the second (the windows, the
    overdue marks and the urgent notices' ends are to the second), the last update to the
    minute (the header shows it as HH:MM)."""
    updated = view.updated_at.replace(second=0, microsecond=0) if view.updated_at else None
    return dataclasses.replace(view, now=view.now.replace(microsecond=0), updated_at=updated)


class Memo:
    """The last result of a pure function, kept while its key is equal.

    The loop ticks ``check_hz`` (5) times a second, and laying out a full
    dossier board costs about 4 ms at 1080p; the data and the second are the
    same for most ticks, so most ticks cost a comparison (the state payloads
    are the same objects from tick to tick: compared by identity first).
    """

    def __init__(self):
        self.key = object()
        self.value = None

    def get(self, key, make):
        if key != self.key:
            self.value, self.key = make(), key
        return self.value


class SignageApp:
    def __init__(self, settings, screenshot_dir: str | None = None):
        s = settings.signage
        self.settings = settings
        self.tz = settings.site.timezone
        self.desk = s.desk.strip()
        self.dossier_url = s.dossier_url
        self.page_entries = parse_page_entries(list(s.pages), s.page_s)
        self.page_names = list(dict.fromkeys(e.name for e in self.page_entries))
        self.slide_s = float(s.slide_s)
        self.rotation = Rotation({e.name: e.seconds for e in self.page_entries}, seconds_of=self._slot_seconds)
        self.power = PowerControl(Schedule.from_settings(s), Cec(s.cec, s.cec_device, int(s.cec_tries), float(s.cec_retry_s)))
        self.check_hz = max(0.5, float(s.check_hz))
        self.ticker_hz = max(0.0, float(s.ticker_hz))
        self.ticker_speed = float(s.ticker_speed)
        self.stale_after_s = float(s.stale_after_s)
        self.screenshot_dir = Path(screenshot_dir) if screenshot_dir else None

        m = settings.mqtt
        self.media = MediaCache(settings.data_dir / "media", media_base_url(settings), m.username, m.password,
                                int(s.media_cache_mb) * 2**20, ca_file=m.tls_ca,
                                on_ready=lambda sha: self._wake.set())  # a fetched slide joins the rotation now
        self.player = VideoPlayer(list(s.video_player), float(s.video_grace_s))
        self._plays: "queue.Queue[tuple | None]" = queue.Queue()  # proof of play, written by its own thread
        self._showing: dict | None = None  # what is on screen since when (proof of play)
        self.play_errors = 0
        self.last_change_ms: float | None = None  # the last page or slide change: from the loop's start to the present
        self.last_handoff: dict | None = None  # the last video handoff's frame gaps (bench/hall.py)
        self._media_of: dict[str, dict] = {}  # original sha256 -> the chosen file {sha256, size}
        self._media_payload = None
        self._last_slot: tuple | None = None
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
        self._wake = threading.Event()  # set by whatever wants a frame now
        self._power_wake = threading.Event()
        self._requests: "queue.Queue[tuple]" = queue.Queue()
        self._loop_at = time.monotonic()
        self._disconnected_at = time.monotonic()
        self._identify_until = 0.0
        self._ticker_width: dict[str, int] = {}
        self._slots_memo, self._frame_memo = Memo(), Memo()  # per tick: a comparison, not a layout
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
        self._wake.set()  # drawn now, not at the next look (an urgent notice above all)

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
        media = {}
        for original, chosen in self._media_of.items():
            path = self.media.path(chosen["sha256"])
            if path is not None:
                media[original] = str(path)
        return pages.View(site_name=self.settings.site.name, now=now, states=states,
                          clock_synced=self.runtime.clock.synced(), offline=offline,
                          updated_at=fresh_at, stale=stale and bool(states), node_id=self.runtime.node_id,
                          desk=self.desk, dossier_url=self.dossier_url, media=media,
                          video_failed=frozenset(self.player.recent_failures(mono)))

    def _update_media_wanted(self, view: pages.View, size) -> None:
        """A new announcements state: tell the cache which files its slides need (fetched in the background)."""
        payload = view.states.get("announcements")
        if payload is self._media_payload:
            return
        self._media_payload = payload
        self._media_of = pages.media_wanted(view, lambda media: choose(media, size))
        self.media.want({c["sha256"]: c["size"] for c in self._media_of.values()})

    def _slot_seconds(self, slot: tuple) -> float | None:
        if slot[0] == "slides" and self._last_view is not None:
            return pages.slide_seconds(self._last_view, slot, self.slide_s)
        return None

    # -- health and commands ------------------------------------------------------------
    def _devices(self) -> dict:
        display = self.display.status if self.display is not None and self.display.status else "missing"
        cec = "missing" if not self.power.cec.available else ("error" if self.power.cec.last_error else "ok")
        return {"display": display, "cec": cec, "media": self.media.status, "video": self.player.status()}

    def _health(self) -> dict:
        return {"last_frame_age_s": round(time.monotonic() - self._loop_at, 2),
                "screen_on": self.screen_on, "page": self.rotation.current[0] if self.rotation.current else None,
                "media_problem": self.media.problem(), "media_cache": self.media.summary(),
                "video_problem": self.player.last_problem if self.player.recent_failures() else None,
                "slide_change_ms": self.last_change_ms, "video_handoff": self.last_handoff,
                "play_errors": self.play_errors}

    def _on_render_thread(self, what: str, arg, timeout: float = 10.0):
        done = threading.Event()
        box: dict = {}
        self._requests.put((what, arg, done, box))
        self._wake.set()
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
        self._wake.set()
        return result

    def _cmd_reload(self, args: dict) -> dict:
        self._load_cache()
        return self._on_render_thread("reload", None)

    def _cmd_identify(self, args: dict) -> dict:
        self._identify_until = time.monotonic() + 10.0
        self._wake.set()
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
            signal.signal(sig, lambda *_: self.stop())

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _power_loop(self) -> None:
        while not self._stop.is_set():
            try:
                on = self.power.tick(clock.now(self.tz))
                if on != self.screen_on:
                    self.screen_on = on
                    self._wake.set()
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
        self.media.start()
        plays = threading.Thread(target=self._play_writer, name="plays", daemon=True)
        plays.start()
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
                before = self._last_slot
                drew = self.render_once(main_r, footer_r, (w, h), mono)
                if drew or mono - last_present >= PRESENT_EVERY_S:
                    # A ticker step changed the footer strip only: only it goes to the screen.
                    footer_only = drew and not self._drew_main and mono - last_present < PRESENT_EVERY_S
                    self.display.present((0, h - fh, w, fh) if footer_only else None)
                    last_present = time.monotonic()
                    if self._last_slot != before:
                        self.last_change_ms = round((last_present - mono) * 1000, 1)
                        log.debug("page change %s -> %s in %.1f ms", before, self._last_slot, self.last_change_ms)
                if self.screen_on and pages.slide_kind(self._last_view, self._last_slot) == "video" \
                        and not pages.urgent_items(self._last_view):
                    last_present = self._hand_over(main_r, footer_r, (w, h), dog, last_present)
                    drew = True
                else:
                    self._preload_next(main_r, (w, h))
                shot_pending = shot_pending or drew
                if shot_pending and self.screenshot_dir is not None and mono - self._last_file_shot >= SHOT_EVERY_S:
                    self._write_file_shot(mono, main_r, footer_r)
                    shot_pending = False
                if not ready_sent:
                    watchdog.ready(f"drawing {self.rotation.current[0] if self.rotation.current else 'waiting'}")
                    ready_sent = True
                self._serve_requests(main_r, footer_r)
                dog.ping()
                self._loop_at = time.monotonic()
                # Asleep until the next look (check_hz), the ticker's next step, the
                # current page's end, or a wake: new state, a command, the screen's schedule.
                wait = 1.0 / self.check_hz
                if self.screen_on and self.ticker_hz and pages.ticker_text(self._last_view):
                    wait = min(wait, 1.0 / self.ticker_hz)
                if self.screen_on:  # off, the rotation stands still
                    wait = min(wait, max(MIN_WAIT_S, self.rotation.due_in(time.monotonic())))
                if shot_pending and self.screenshot_dir is not None:  # a held-back screenshot file: on time
                    wait = min(wait, max(MIN_WAIT_S, SHOT_EVERY_S - (time.monotonic() - self._last_file_shot)))
                self._wake.wait(max(0.0, wait - (time.monotonic() - mono)))
                self._wake.clear()
        finally:
            watchdog.stopping()
            self._end_showing()  # the showing on screen at a stop is counted too
            self._plays.put(None)
            plays.join(5.0)
            self.media.stop()
            self.runtime.stop()
            self.display.close()
        return 0

    # -- slides: pictures ahead of time, videos handed to the player ---------------------------
    def _preload_next(self, main_r, size) -> None:
        """Decode and scale the next picture slide while this one is shown (the change then costs a blit)."""
        view, current = self._last_view, self.rotation.current
        if view is None or current is None or (current, view.states.get("announcements")) == self._preloaded_for:
            return
        self._preloaded_for = (current, view.states.get("announcements"))  # once per slot, not every loop
        slots = self._slots_now(view, size)
        if current not in slots or len(slots) < 2:
            return
        nxt = slots[(slots.index(current) + 1) % len(slots)]
        if pages.slide_kind(view, nxt) == "image":
            main_r.preload(pages.slide_page(view, size, nxt[1]))

    def _hand_over(self, main_r, footer_r, size, dog, last_present: float) -> float:
        """Give the screen to the video player for the clip on the current slot, take it back,
        and draw the next page at once. Returns when the last frame was presented."""
        view, slot = self._last_view, self._last_slot
        item = pages.slide(view, slot[1]) or {}
        media = item.get("media") or {}
        sha = media.get("sha256", "")
        chosen = self._media_of.get(sha) or {"sha256": sha}
        path = self.media.path(chosen["sha256"])
        self._showing = None  # the title card is not the clip: its showing starts with the player
        result = self.player.check(sha, path)
        if result is None:
            kms = self.display.driver.lower() == "kmsdrm"
            if kms:
                self.display.release()
            started_at = clock.now_iso(self.tz)

            def keep_alive() -> None:  # the loop is alive while the player has the screen
                dog.ping()
                self._loop_at = time.monotonic()
                self._serve_requests(main_r, footer_r)

            def interrupt() -> bool:  # stopping, the screen off, or an urgent notice for this TV: it takes the screen now
                if self._stop.is_set() or not self.screen_on:
                    return True
                return bool(pages.urgent_items(self.view(clock.now(self.tz), time.monotonic())))

            result = self.player.play(sha, path, float(media.get("duration_s") or 0), keep_alive, interrupt)
            if kms:
                self.display.reacquire()
            if result.ok:
                self.media.touch(chosen["sha256"])
                self._queue_play({"item_type": "slide", "item_id": slot[1], "seconds": round(result.seconds, 1),
                                  "title": item.get("title"), "media_sha256": sha}, started_at)
        main_r.force()
        footer_r.force()
        mono = time.monotonic()
        view = self.view(clock.now(self.tz), mono)
        self.rotation.advance(self._slots_now(view, size), mono)
        self.render_once(main_r, footer_r, size, mono)
        self.display.present()
        back = time.monotonic()
        if result.started_mono:
            self.last_handoff = {"before_ms": round((result.started_mono - last_present) * 1000, 1),
                                 "after_ms": round((back - result.ended_mono) * 1000, 1),
                                 "played_s": round(result.seconds, 1), "ok": result.ok}
            log.info("video handoff: %.0f ms from the last frame to the player, %.0f ms from its exit to the next frame",
                     self.last_handoff["before_ms"], self.last_handoff["after_ms"])
        return back

    # -- proof of play ----------------------------------------------------------------------------
    def _track_showing(self, view: pages.View, slot: tuple | None, mono: float) -> None:
        """One ``play`` event each time a page, slide or urgent notice leaves the screen."""
        now_showing = pages.showing(view, slot, self.screen_on)
        key = now_showing[:2] if now_showing else None
        if self._showing is not None and self._showing["key"] == key:
            return
        self._end_showing(mono)
        if now_showing is not None:
            item_type, item_id, title, sha = now_showing
            self._showing = {"key": key, "item_type": item_type, "item_id": item_id, "title": title,
                             "media_sha256": sha, "ts": clock.now_iso(self.tz), "mono": mono}
            if sha:
                chosen = self._media_of.get(sha)
                if chosen:
                    self.media.touch(chosen["sha256"])

    def _end_showing(self, mono: float | None = None) -> None:
        shown, self._showing = self._showing, None
        if shown is None:
            return
        seconds = round((time.monotonic() if mono is None else mono) - shown["mono"], 1)
        if seconds <= 0:
            return  # a frame's flash (an urgent notice arriving with the first frame) is not a showing
        fields = {"item_type": shown["item_type"], "item_id": shown["item_id"], "seconds": seconds}
        if shown["title"]:
            fields["title"] = shown["title"]
        if shown["media_sha256"]:
            fields["media_sha256"] = shown["media_sha256"]
        self._queue_play(fields, shown["ts"])

    def _queue_play(self, fields: dict, ts: str) -> None:
        self._plays.put((fields, ts))

    def _play_writer(self) -> None:
        """Writes proof of play to the outbox off the render thread (a commit on an SD card may take
        tens of ms); a failure is logged and counted, never raised into the screen."""
        while True:
            item = self._plays.get()
            if item is None:
                return
            fields, ts = item
            try:
                self.runtime.record("play", fields, ts=ts)
            except Exception as e:  # OutboxError (disk full), MessageError: logged, never a crash
                self.play_errors += 1
                log.error("proof of play not recorded (%s %s, %.1f s): %s", fields.get("item_type"),
                          fields.get("item_id"), fields.get("seconds", 0), e)

    def render_once(self, main_r, footer_r, size, mono: float) -> bool:
        """Build this moment's frame and draw what changed; True if anything was drawn."""
        now = clock.now(self.tz)
        view = self.view(now, mono)
        self._last_view = view
        self._update_media_wanted(view, size)
        if not self.screen_on:
            self._last_slot = None
            self._track_showing(view, None, mono)
            self._drew_main = main_r.draw(pages.off_frame())
            return footer_r.draw(pages.off_frame()) | self._drew_main
        key = frame_key(view)
        slot = self.rotation.pick(self._slots_memo.get((key, size), lambda: self._slots_now(view, size)), mono)
        self._last_slot = slot
        self._track_showing(view, slot, mono)
        main = self._frame_memo.get((key, size, slot), lambda: pages.frame(view, size, slot))
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
        self._drew_main = drew_main
        return drew_main or drew_footer

    _last_view: pages.View | None = None
    _preloaded_for: tuple | None = None
    _drew_main = True  # the last render_once drew above the footer (not the ticker alone)

    def _slots_now(self, view: pages.View, size) -> list[tuple]:
        """The rotation's slots of the pages whose schedule is on now."""
        on = pages.pages_on(self.page_entries, view.now)
        self.rotation.durations = dict(on)
        return pages.slots(view, size, [name for name, _ in on])

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
