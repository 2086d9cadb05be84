"""``congso demo`` (``make demo``): the whole office on one machine.

Starts a real Mosquitto with generated credentials, the gateway (its
database seeded with a commune: staff, cards and fingers, this week's
calendar, dossiers in every state, announcements), the door
(``congso attendance run`` on the fingerprint-module emulator, and the
virtual card reader when pcscd and vpcd are available) and the TV
(``congso signage run``) as separate processes, exactly as on the Pis, and
the rating kiosk in this process (so that the scripted citizens can press
its GPIO buttons and touch its screen), and the office console
(``congso web run``) on http://127.0.0.1:8080/ (``[web] port``; another
free port, said clearly, when that one is taken) with one account per role,
each given a new random password every run (there are no default
passwords, not even here). The console reads the gateway's database, so
the morning shows live on its dashboard. A working morning is then played
(``demo_office.Morning``) until Ctrl-C. With a display the TV and the kiosk
open windows; without one they draw headless and their screens are saved
as PNG files in ``<out>/tv-1/screen.png`` and ``<out>/kiosk-1/screen.png``
whenever they change.

Everything lives in one directory (``demo-out`` by default) that a re-run
reuses: broker passwords, outboxes and the gateway database are kept. The
broker itself runs from a private runtime directory (``harness.Broker``):
started as root, Mosquitto drops to the user 'mosquitto', which cannot
enter a checkout in /root or in a 0700 home. ``<out>/broker`` keeps its
credentials, persisted sessions and a copy of its config, and its log.
In a terminal the view is live; otherwise (CI, a pipe) it prints a line per
scene and per stored event and a status line every few seconds.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import demo_office, harness
from .harness import Broker, Proc
from ..ops.broker import BrokerConfigError, find_mosquitto, free_port
from ..gateway import accounts, audit
from ..gateway.db import open_db, open_readonly
from ..protocol import clock
from ..protocol.messages import RATING_LEVELS
from ..protocol.settings import Settings
from ..protocol.statecache import write_atomic
from ..protocol.topics import GATEWAY_ID

HOST = "127.0.0.1"
DOOR, TV, KIOSK = demo_office.DOOR, demo_office.TV, demo_office.KIOSK
NODES = {DOOR: "attendance", TV: "signage", KIOSK: "rating"}  # the kiosk runs in this process
CHILD_NODES = (DOOR, TV)
# Mock pins: the door's LEDs, buzzer and strike; the kiosk's three buttons and their LEDs.
DOOR_PINS = {"GPIO_GREEN_LED": "GPIO17", "GPIO_RED_LED": "GPIO27", "GPIO_BUZZER": "GPIO22", "GPIO_RELAY": "GPIO23"}
KIOSK_BUTTONS, KIOSK_LEDS = ["GPIO5", "GPIO6", "GPIO13"], ["GPIO16", "GPIO20", "GPIO21"]
TV_SIZE, KIOSK_SIZE = (1280, 720), (1024, 600)
# vpcd's two slots, two readers in pcscd: "Virtual PCD 00 00" at the door, "... 00 01" at the kiosk.
VPCD_PORT = 35963
DOOR_READER, KIOSK_READER = "Virtual PCD 00 00", "Virtual PCD 00 01"
# The hall TV's rotation: the board, the province's poster and clip, the calendar, ..., the office's figures.
TV_PAGES = "dossiers,slides,calendar,ready,announcements,ratings,kpi"
REFRESH_S = 0.5
STATUS_EVERY_S = 5.0
RECENT = 8
STOP_TIMEOUT_S = harness.STOP_TIMEOUT_S
# The console's demo accounts, one per role: (user name, role, staff id, desks).
# The officer is the one-stop officer Đỗ Thị Lan at the demo desk; the viewer the chairman.
ACCOUNTS = [
    ("quantri", "admin", None, ()),
    ("vanthu", "clerk", "NV011", ()),
    ("motcua", "officer", "NV009", (demo_office.DESK,)),
    ("chutich", "viewer", "NV001", ()),
]
# Passwords a person can read off the terminal and type: no 0/o, 1/l/i.
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

# One query per kind, newest first; the last three columns become the "what".
_EVENTS_SQL = {
    "attendance": "SELECT rowid, received_at, ts, node_id, method, credential, staff_id "
    "FROM attendance_events WHERE rowid > ? ORDER BY rowid DESC LIMIT ?",
    "rating": "SELECT rowid, received_at, ts, node_id, level, desk_id, NULL "
    "FROM rating_events WHERE rowid > ? ORDER BY rowid DESC LIMIT ?",
}


@dataclass
class Dead:
    """Who stopped unexpectedly, for the report."""

    name: str
    returncode: int | None
    log: Path


@dataclass
class Event:
    kind: str
    rowid: int
    received_at: str
    ts: str
    node: str
    what: str

    def line(self) -> str:
        return f"{self.ts[11:19]}  {self.node:<8} {self.what}"


# -- processes ------------------------------------------------------------------
def _child_env(settings: Settings, **values: str) -> dict[str, str]:
    env = dict(os.environ)
    if settings.source:  # --config given on our command line: the children read it too
        env["CONGSO_CONFIG"] = settings.source
    env.update(
        CONGSO_SITE_ID=settings.site.id,
        CONGSO_SITE_TIMEZONE=settings.site.timezone,
        CONGSO_LOG_LEVEL=settings.log.level,
        CONGSO_HEALTH_INTERVAL_S="5",  # a lively registry; the default 30 s is for real offices
        CONGSO_CLOCK_SYNCED="yes",  # a container or laptop may not report NTP; the demo is not about clocks
    )
    env.update({f"CONGSO_{k}": v for k, v in values.items()})
    return env


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path, console: bool = False) -> Proc:
    # A fresh log each run, so a tail shows this run. Own process group:
    # Ctrl-C in the terminal reaches only us, and we stop the children in
    # order (nodes, then gateway, then broker). The caller's CONGSO_*
    # variables pass through (``_child_env``).
    return Proc(args, env, logs / f"{name}.log", name=name, stdout="log", clean_env=False, console=console,
                own_group=True, append=False)


def _start_broker(settings: Settings, out: Path) -> Broker:
    # A new port each run: an old demo may still hold the last one. The
    # broker's files in a runtime directory Mosquitto can enter; what a
    # re-run keeps (passwords, sessions) in <out>/broker.
    log = out / "broker" / "mosquitto.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    broker = Broker(settings.site.id, list(NODES), host=HOST, state_dir=out / "broker", log_path=log,
                    prefix="congso-demo-broker-")
    try:
        broker.start()  # in its own process group: Ctrl-C reaches us, we stop it last
    except BaseException:
        broker.cleanup()
        raise
    return broker


def _headless() -> bool:
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _seed(settings: Settings, out: Path) -> bool:
    db = open_db(out / "gateway" / "gateway.sqlite")
    try:
        now = clock.now(settings.site.timezone)
        seeded = demo_office.seed(db, now, settings.site.timezone)
        work = out / "media-source"
        work.mkdir(parents=True, exist_ok=True)
        try:
            made = demo_office.seed_media(db, out / "gateway", settings, now, work)
        except Exception as e:  # the hall then shows text notices only; say why
            print(f"congso demo: NOTE: the poster and clip could not be added: {e}", flush=True)
            made = []
        if made:
            print("congso demo: slides for the hall's TV: " + "; ".join(made), flush=True)
        return seeded
    finally:
        db.conn.close()


def _video_player() -> str:
    """mpv for the clip: its own full-screen window with a desktop, no picture at all headless."""
    if _headless():
        return "mpv,--vo=null,--ao=null,--really-quiet"
    return "mpv,--fs,--really-quiet,--no-osc"


def _start_office(settings: Settings, out: Path, port: int, creds: dict[str, str], cards: bool,
                  console_port: int) -> list[Proc]:
    logs = out / "logs"
    mqtt = {"MQTT_HOST": HOST, "MQTT_PORT": str(port)}
    gw_env = _child_env(settings, **mqtt, MQTT_USERNAME=GATEWAY_ID, MQTT_PASSWORD=creds[GATEWAY_ID],
                        DATA_DIR=str(out / "gateway"))
    children = [_spawn("gateway", ["gateway", "run"], gw_env, logs)]
    # The door: the module emulator in the door process (its console on our
    # pipe), the virtual reader through pcscd, mock pins for LEDs and strike.
    door_env = _child_env(settings, **mqtt, NODE_ID=DOOR, MQTT_USERNAME=DOOR, MQTT_PASSWORD=creds[DOOR],
                          DATA_DIR=str(out / "nodes" / DOOR), FINGERPRINT_BACKEND="emulator",
                          CARD_BACKEND="pcsc" if cards else "none", CARD_READER=DOOR_READER, **DOOR_PINS)
    door_env["GPIOZERO_PIN_FACTORY"] = "mock"
    door = _spawn(DOOR, ["attendance", "run"], door_env, logs, console=True)
    for staff_id, _, _, _, _, slot in demo_office.STAFF:
        if slot is not None:  # the fingers the gateway's roster says are in this module
            door.send(f"enroll {staff_id} {slot}")
    tv_env = _child_env(settings, **mqtt, NODE_ID=TV, MQTT_USERNAME=TV, MQTT_PASSWORD=creds[TV],
                        DATA_DIR=str(out / "nodes" / TV), SIGNAGE_PAGE_S="8", SIGNAGE_ON_HOURS="00:00-24:00",
                        SIGNAGE_PAGES=TV_PAGES, SIGNAGE_MEDIA_URL=f"http://{HOST}:{console_port}",
                        SIGNAGE_VIDEO_PLAYER=_video_player(),
                        SIGNAGE_ON_DAYS="monday,tuesday,wednesday,thursday,friday,saturday,sunday",
                        DISPLAY_WIDTH=str(TV_SIZE[0]), DISPLAY_HEIGHT=str(TV_SIZE[1]))
    if _headless():
        tv_env["SDL_VIDEODRIVER"] = "dummy"
    children += [door, _spawn(TV, ["signage", "run", "--screenshot-dir", str(out / TV)], tv_env, logs)]
    return children


def new_password() -> str:
    """A fresh random password for this run, e.g. ``k7mq-x2pa-9rtw-d4ne`` (19 characters, ~98 bits)."""
    return "-".join("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(4)) for _ in range(4))


def _demo_accounts(out: Path) -> list[tuple[str, str, str]]:
    """One console account per role with a new random password; (name, role, password).

    Made through ``congso.gateway.accounts`` as ``congso web user add`` does;
    on a re-run the same accounts get new passwords (their old sessions end).
    """
    db = open_db(out / "gateway" / "gateway.sqlite")
    made = []
    try:
        for name, role, staff_id, desks in ACCOUNTS:
            password = new_password()
            row = accounts.get_user(db, name)
            if row is None:
                accounts.add_user(db, name, role, password, staff_id)
                audit.record(db, actor="demo", via="cli", action="user.add", target=name, detail={"role": role})
            else:
                if row["role"] != role or row["staff_id"] != staff_id:
                    accounts.set_role(db, name, role, staff_id)
                if not row["active"]:
                    accounts.set_active(db, name, True)
                accounts.set_password(db, name, password)
                audit.record(db, actor="demo", via="cli", action="user.password", target=name)
            accounts.set_desks(db, name, list(desks))
            made.append((name, role, password))
    finally:
        db.conn.close()
    return made


def _console_port(wanted: int) -> tuple[int, str | None]:
    """``wanted`` when it is free on 127.0.0.1, else a free port and why."""
    with socket.socket() as s:
        try:
            s.bind((HOST, wanted))
            return wanted, None
        except OSError as e:
            reason = e.strerror or str(e)
    port = free_port(HOST)
    return port, f"port {wanted} on {HOST} is taken ({reason}: another demo or program?); the console uses port {port} instead"


def _start_console(settings: Settings, out: Path, children: list[Proc], port: int, broker: Broker) -> str:
    """``congso web run`` on the gateway's database (added to ``children``), once it answers /healthz.

    It checks the TV's login against the broker's password file when the TV fetches a slide's file.
    """
    env = _child_env(settings, DATA_DIR=str(out / "gateway"), WEB_TLS_CERT="", WEB_TLS_KEY="",
                     WEB_BROKER_PASSWD=str(broker.conf / "passwd"))

    def spawn(args, env, name=None):
        children.append(_spawn(name or args[0], args, env, out / "logs"))  # stopped with the others, whatever happens
        return children[-1]

    return harness.start_console(spawn, env, port=port, host=HOST, timeout=60)[1]


def _print_accounts(url: str, made: list[tuple[str, str, str]]) -> None:
    print(f"congso demo: the office console: {url}/  (open it in a browser; the morning shows live on Tổng quan)", flush=True)
    print("congso demo: its accounts for this run (new random passwords each run; none is a default):", flush=True)
    for name, role, password in made:
        print(f"congso demo: console account {name:<8} password {password}  role {role:<7} ({accounts.ROLE_VI[role]})",
              flush=True)


class DemoKiosk:
    """The rating kiosk (the real KioskApp) on a thread of the demo, with mock buttons."""

    def __init__(self, settings: Settings, out: Path, port: int, password: str, card_reader: str | None = None):
        from gpiozero.pins.mock import MockFactory

        from ..rating_node.app import KioskApp

        kiosk_settings = settings.with_overrides(
            node={"id": KIOSK}, mqtt={"host": HOST, "port": port, "username": KIOSK, "password": password},
            data={"dir": str(out / "nodes" / KIOSK)},
            rating={"desk_id": demo_office.DESK, "desk_name": "Quầy 1 · Bộ phận Một cửa",
                    "officer_card": card_reader is not None},
            card={"backend": "pcsc" if card_reader else "none", "reader": card_reader or ""},
            gpio={"buttons": KIOSK_BUTTONS, "button_leds": KIOSK_LEDS},
            display={"width": KIOSK_SIZE[0], "height": KIOSK_SIZE[1]}, health={"interval_s": 5.0},
            clock={"synced": "yes"},
        )
        self.factory = MockFactory()
        self.app = KioskApp(kiosk_settings, pin_factory=self.factory)
        self.shot = out / KIOSK / "screen.png"
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="demo-kiosk", daemon=True)
        self.thread.start()
        if not self.app.ready.wait(30):
            raise RuntimeError(f"the kiosk did not draw its first frame: {self.error}")
        self._saved_frame = -1

    def _run(self) -> None:
        try:
            self.app.run()
        except BaseException as e:  # reported by the watcher as a dead node
            self.error = e

    def alive(self) -> bool:
        return self.thread.is_alive()

    def levels(self) -> list:
        return list(self.app.kiosk.levels)

    def press(self, index: int) -> None:
        pin = self.factory.pin(KIOSK_BUTTONS[index])
        pin.drive_low()
        time.sleep(0.05)
        pin.drive_high()

    def touch(self, action: str) -> None:
        import pygame

        from ..rating_node import screens

        def post():
            x, y = screens.center(self.app.screen, action)
            w, h = self.app.display.size
            pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, x=x / w, y=y / h, dx=0.0, dy=0.0,
                                                 touch_id=1, finger_id=0, pressure=1.0))

        # A citizen waits for the button: the thank-you or a notice ("Đã nhận quầy") has none.
        deadline = time.monotonic() + 8.0
        while True:
            try:
                self.app.call(post)
                return
            except KeyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until the kiosk takes a vote again (the lockout after the last one is over)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.app.call(lambda: self.app.kiosk.view(time.monotonic()))
            if view.screen == "idle" and not view.locked:
                return
            time.sleep(0.2)

    def save_if_changed(self) -> None:
        frames = self.app.renderer.frames if self.app.renderer else 0
        if frames != self._saved_frame:
            png = self.app.call(lambda: self.app.display.screenshot_png())
            write_atomic(self.shot, png)
            self._saved_frame = frames

    def stop(self) -> None:
        self.app.stop()
        self.thread.join(15)


def _cards_available(out: Path):
    """(tap function, lock) when the virtual reader works here, else (None, why)."""
    try:
        from ..devices import pcscd
        from ..devices.virtualcard import tap
    except ImportError as e:
        return None, f"pyscard missing ({e})"
    try:
        lock = pcscd.vpcd_lock(timeout=1.0)
        lock.__enter__()
    except TimeoutError:
        return None, "the virtual reader is in use (tests running?)"
    try:
        daemon = pcscd.ensure_pcscd(log_path=out / "logs" / "pcscd.log")
    except Exception as e:  # not root, no vpcd driver, ...
        lock.__exit__(None, None, None)
        return None, f"pcscd with the vpcd driver could not start ({e})"
    if not any("Virtual PCD" in r for r in pcscd.list_readers()):
        lock.__exit__(None, None, None)
        return None, "pcscd runs but lists no vpcd virtual reader (apt install vsmartcard-vpcd)"

    readers = sorted(r for r in pcscd.list_readers() if "Virtual PCD" in r)

    def tap_card(uid: str, at: str = DOOR) -> None:
        """A card on the door's reader (vpcd's first slot) or on the kiosk's (its second)."""
        tap(uid, port=VPCD_PORT + (1 if at == KIOSK else 0), hold_s=0.6)

    return tap_card, (lock, daemon, readers)


def _stop(children: list[Proc], broker: Broker | None, kiosk: "DemoKiosk | None" = None) -> None:
    """Nodes first (their outboxes keep anything unacked), then the gateway, then the broker."""
    for c in children:
        c.close_stdin()
    if kiosk is not None:
        kiosk.stop()
    # The console goes with the nodes: the gateway is the last to hold the database.
    harness.terminate_all([c for c in children if c.name in NODES or c.name == "web"], STOP_TIMEOUT_S)
    if children:
        time.sleep(0.5)  # let the gateway store the nodes' last words (their offline status)
    harness.terminate_all([c for c in children if c.name not in NODES], STOP_TIMEOUT_S)
    for c in children:
        c.close()
    if broker:
        broker.stop()  # its sessions and credentials saved in <out>/broker
        broker.cleanup()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- reading the gateway database -------------------------------------------------
def _describe(kind: str, a, b, c) -> str:
    if kind == "attendance":
        return f"{a} {b} -> {c or 'unknown'}"
    return f"rating {a} at {b}"


def _events(db, after: dict[str, int], limit: int) -> list[Event]:
    """Events stored after the given rowids, oldest first (at most ``limit`` per kind)."""
    rows = [
        Event(kind, rowid, received, ts, node, _describe(kind, a, b, c))
        for kind, sql in _EVENTS_SQL.items()
        for rowid, received, ts, node, a, b, c in db.execute(sql, (after.get(kind, 0), limit)).fetchall()
    ]
    return sorted(rows, key=lambda e: (e.received_at, e.ts))


def _totals(db) -> dict[str, int]:
    """{"attendance": n, <rating level>: n, ...}, levels from best to worst."""
    levels = dict(db.execute("SELECT level, count(*) FROM rating_events GROUP BY level").fetchall())
    order = sorted(levels, key=lambda lv: RATING_LEVELS.index(lv) if lv in RATING_LEVELS else len(RATING_LEVELS))
    return {"attendance": db.execute("SELECT count(*) FROM attendance_events").fetchone()[0]} | {lv: levels[lv] for lv in order}


def _nodes(db) -> list[tuple]:
    return db.execute(
        "SELECT node_id, kind, state, last_seen, outbox, clock_synced, rejected FROM nodes ORDER BY node_id"
    ).fetchall()


def _ratings(totals: dict[str, int]) -> int:
    return sum(n for k, n in totals.items() if k != "attendance")


def _ago(iso: str | None) -> str:
    if not iso:
        return "-"
    seconds = (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds()
    return f"{max(seconds, 0):.0f}s ago"


class Watcher:
    """Follows the gateway database, which appears once the gateway has started."""

    def __init__(self, path: Path):
        self.path = path
        self.db = None
        # What a previous run left: "this run" counts from here, and only newer events are printed.
        self.baseline = {"attendance": 0}
        self.last_rowid: dict[str, int] = {}

    def take_baseline(self) -> None:
        """Call before the gateway starts, so nothing it stores is counted as old."""
        if self.ready():
            self.baseline = _totals(self.db)
            self.last_rowid = {e.kind: e.rowid for e in _events(self.db, {}, 1)}

    def ready(self) -> bool:
        if self.db is None and self.path.exists():
            self.db = open_readonly(self.path)
        if self.db is None:
            return False
        try:
            self.db.execute("SELECT 1 FROM nodes, attendance_events, rating_events LIMIT 1").fetchall()
            return True
        except sqlite3.OperationalError:  # created but not migrated yet
            return False

    def close(self) -> None:
        # Closed before the gateway stops, so that the gateway is the last
        # connection and folds its write-ahead log back into the database file.
        if self.db is not None:
            self.db.conn.close()
            self.db = None

    def new_events(self) -> list[Event]:
        events = _events(self.db, self.last_rowid, 10_000)
        for e in events:
            self.last_rowid[e.kind] = max(self.last_rowid.get(e.kind, 0), e.rowid)
        return events

    def this_run(self) -> tuple[int, int]:
        now = _totals(self.db)
        attendance = now["attendance"] - self.baseline["attendance"]
        return attendance, _ratings(now) - _ratings(self.baseline)


# -- views --------------------------------------------------------------------------
def _status_line(watcher: Watcher, elapsed: float) -> str:
    attendance, ratings = watcher.this_run()
    nodes = ", ".join(f"{n} {state or '?'} (outbox {'-' if outbox is None else outbox})"
                      for n, _, state, _, outbox, _, _ in _nodes(watcher.db))
    return f"[{elapsed:3.0f}s] stored {attendance} attendance events, {ratings} ratings; {nodes or 'no nodes yet'}"


def _table(title: str, *columns: str) -> Table:
    # Compact (no outer blank lines) so the whole view fits an 80x24 terminal.
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, collapse_padding=True)
    for col in columns:
        table.add_column(col, justify="right" if col in ("count", "outbox", "rejected") else "left")
    return table


def _render(watcher: Watcher, header: str, scenes: list[str]) -> Group:
    if not watcher.ready():
        return Group(Text(header, style="bold"), Text("waiting for the gateway database..."))
    db = watcher.db
    nodes = _table("Nodes", "node", "kind", "status", "last seen", "outbox", "clock synced", "rejected")
    for node, kind, state, last_seen, outbox, synced, rejected in _nodes(db):
        nodes.add_row(node, kind or "?", Text(state or "?", style="green" if state == "online" else "red"),
                      _ago(last_seen), "-" if outbox is None else str(outbox),
                      {1: "yes", 0: "NO"}.get(synced, "-"), str(rejected or 0))

    totals = _totals(db)
    stored = _table("Stored", "events", "count")
    stored.add_row("attendance", str(totals["attendance"]))
    for level, n in list(totals.items())[1:]:
        stored.add_row(f" {level}", str(n))
    stored.add_row("ratings, all", str(_ratings(totals)))

    recent = _table(f"Last {RECENT} events", "time", "node", "what")
    for e in reversed(_events(db, {}, RECENT)[-RECENT:]):
        recent.add_row(e.ts[11:19], e.node, e.what)
    side_by_side = Table.grid(padding=(0, 2))
    side_by_side.add_row(stored, recent)
    happening = _table("What happens", "scene")
    for line in scenes[-6:]:
        happening.add_row(line)
    return Group(Text(header, style="bold"), Text(""), nodes, Text(""), side_by_side, Text(""), happening)


def _watch(site: str, watcher: Watcher, children: list[Proc], broker: Broker, stop: threading.Event,
           duration: float, kiosk: DemoKiosk, morning: demo_office.Morning, console_url: str = "") -> Dead | None:
    """Show the office until stopped or out of time; return who died, if anyone."""
    started = time.monotonic()
    tty = sys.stdout.isatty()
    header = f"congso demo: site {site}, broker {HOST}:{broker.port}" + (
        f", console {console_url}/ (accounts above)" if console_url else "") + ". " + (
        f"Stops after {duration:.0f}s." if duration > 0 else "Ctrl-C to stop."
    )
    live = Live(console=Console(), auto_refresh=False) if tty else None
    next_status = started + STATUS_EVERY_S
    printed = 0
    try:
        if live:
            live.start()
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if duration > 0 and elapsed >= duration:
                break
            dead = next((c for c in children if not c.alive()), None)
            if dead:
                return Dead(dead.name, dead.returncode, dead.log_path)
            if not broker.running():
                return Dead("mosquitto", broker.proc.returncode, broker.log_path)
            if not kiosk.alive():
                return Dead(KIOSK, None, Path(f"(in this process: {kiosk.error})"))
            kiosk.save_if_changed()
            scenes = list(morning.lines)
            if live:
                live.update(_render(watcher, header + f"  [{elapsed:.0f}s]", [line for _, line in scenes]), refresh=True)
            else:
                for number, line in scenes:
                    if number > printed:
                        print(f"scene {line}", flush=True)
                        printed = number
                if watcher.ready():
                    for e in watcher.new_events():
                        print(f"event {e.line()}", flush=True)
                    if time.monotonic() >= next_status:
                        print(_status_line(watcher, elapsed), flush=True)
                        next_status += STATUS_EVERY_S
            stop.wait(REFRESH_S)
    finally:
        if live:
            live.stop()
    return None


# -- the command -------------------------------------------------------------------
def _log_to_file(path: Path) -> None:
    """The kiosk and the script run in this process: their logs go to a file,
    not across the live view."""
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)


def run_demo(settings: Settings, out_dir: Path, duration: float, pace_s: float = 2.5) -> int:
    try:
        find_mosquitto()
    except BrokerConfigError as e:
        print(f"error: {e}\nRun `make demo`: it installs Mosquitto and then starts the demo.", file=sys.stderr)
        return 1
    out = out_dir.resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)

    _log_to_file(out / "logs" / "demo.log")
    if _headless():
        # No screen: the TV and the kiosk draw off-screen; their PNGs are saved as they change.
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    stop = threading.Event()
    old_handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    broker: Broker | None = None
    children: list[Proc] = []
    kiosk: DemoKiosk | None = None
    card_hold = None
    dead: Dead | None = None
    watcher = Watcher(out / "gateway" / "gateway.sqlite")
    script_db = None
    try:
        try:
            broker = _start_broker(settings, out)
        except (BrokerConfigError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        creds = broker.credentials
        seeded = _seed(settings, out)
        print("congso demo: " + ("a commune seeded into the gateway database" if seeded else "the commune of the last run kept"), flush=True)
        tap_card, card_hold = _cards_available(out)
        kiosk_reader = None
        if tap_card is None:
            print(f"congso demo: the door runs without a card reader: {card_hold}", flush=True)
            card_hold = None
        else:
            print("congso demo: cards are tapped on the vpcd virtual reader through pcscd", flush=True)
            if KIOSK_READER in card_hold[2]:
                kiosk_reader = KIOSK_READER
                print("congso demo: the officer takes the desk with a card tap on the kiosk's reader (vpcd's second slot)",
                      flush=True)
        watcher.take_baseline()
        console_port, moved = _console_port(settings.web.port)
        if moved:
            print(f"congso demo: NOTE: {moved}", flush=True)
        children = _start_office(settings, out, broker.port, creds, cards=tap_card is not None, console_port=console_port)
        kiosk = DemoKiosk(settings, out, broker.port, creds[KIOSK], card_reader=kiosk_reader)
        made = _demo_accounts(out)
        try:
            url = _start_console(settings, out, children, console_port, broker)
        except AssertionError as e:
            print(f"error: the office console did not start: {e}", file=sys.stderr)
            return 1
        print(f"congso demo: broker on {HOST}:{broker.port}; gateway, {DOOR}, {TV} and {KIOSK} started; "
              f"screens in {out / TV} and {out / KIOSK}; logs in {out / 'logs'}", flush=True)
        _print_accounts(url, made)
        print("congso demo: an urgent notice on the TV, on demand: log in as quantri or vanthu, Thông báo → "
              "Thông báo khẩn (the morning posts one too)", flush=True)
        script_db = open_db(out / "gateway" / "gateway.sqlite")
        door = next(c for c in children if c.name == DOOR)
        morning = demo_office.Morning(script_db, settings.site.timezone, door.send, tap_card, kiosk, pace_s=pace_s,
                                      kiosk_card=kiosk_reader is not None)
        script = threading.Thread(target=morning.run, args=(stop,), name="demo-morning", daemon=True)
        script.start()
        dead = _watch(settings.site.id, watcher, children, broker, stop, duration, kiosk, morning, url)
        stop.set()
        script.join(15)
    finally:
        # Our handlers stay in place until everything is stopped: a second
        # Ctrl-C must not cut the clean shutdown short (it is bounded anyway).
        stop.set()
        watcher.close()
        if broker:
            print("stopping: nodes and console, gateway, broker...", flush=True)
        _stop(children, broker, kiosk)
        if script_db is not None:
            script_db.conn.close()
        if card_hold:
            lock, daemon, _ = card_hold
            if daemon is not None:
                daemon.stop()
            lock.__exit__(None, None, None)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)

    if dead:
        print(f"error: {dead.name} stopped unexpectedly (exit code {dead.returncode}); last lines of {dead.log}:", file=sys.stderr)
        print(_tail(dead.log), file=sys.stderr)
        return 1
    # uvicorn ends its graceful shutdown by raising SIGTERM again: that is a clean stop.
    failed = [c for c in children if c.returncode != 0 and not (c.name == "web" and c.returncode == -signal.SIGTERM)]
    for c in failed:
        print(f"error: {c.name} exited with code {c.returncode}; last lines of {c.log_path}:\n{_tail(c.log_path)}", file=sys.stderr)
    _summary(out, watcher)
    return 1 if failed else 0


def _summary(out: Path, watcher: Watcher) -> None:
    if watcher.ready():
        attendance, ratings = watcher.this_run()
        totals = _totals(watcher.db)
        levels = ", ".join(f"{k} {v}" for k, v in totals.items() if k != "attendance") or "none"
        print(f"stored this run: {attendance} attendance events and {ratings} ratings; "
              f"the database now holds {totals['attendance']} attendance events and {_ratings(totals)} ratings ({levels})")
    else:
        print("no events stored: the gateway database never appeared")
    watcher.close()
    print(f"gateway database: {watcher.path}  (export: CONGSO_DATA_DIR={watcher.path.parent} congso events export --format csv)")
    print(f"screens: {out / TV / 'screen.png'}, {out / KIOSK / 'screen.png'}")
    print(f"logs: {out / 'logs'} (gateway.log, web.log, {', '.join(f'{n}.log' for n in CHILD_NODES)}, demo.log for {KIOSK} "
          f"and the script) and {out / 'broker' / 'mosquitto.log'}")
