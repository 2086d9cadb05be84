"""What every node (door, TV, kiosk) has in common on the wire.

``NodeRuntime`` joins the MQTT link, the durable outbox, the health
heartbeat and command dispatch. A role uses it like this::

    runtime = NodeRuntime(settings, kind="attendance", devices=lambda: {...})
    runtime.commands["identify"] = blink_and_beep
    runtime.start()
    event = runtime.record("attendance", {...})   # committed: now give feedback

Delivery: ``record`` commits the event, then wakes the sender. The sender
publishes unacked events in bounded batches (at most ``[outbox] window`` in
flight), re-publishes everything after a reconnect, and re-publishes any
event still unacked ``[outbox] replay_after_s`` after it was sent. An ack
deletes the row. The gateway stores by ``event_id``, so re-publishing is
always safe.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
import queue
import sqlite3
import threading
import time
from typing import Any, Callable

from .. import __version__
from . import clock, dbcheck, messages, topics
from .link import Incoming, MqttLink
from .outbox import Outbox, OutboxError
from .rejects import RejectLog
from .settings import Settings
from .statecache import StateCache, write_atomic

log = logging.getLogger(__name__)

CommandHandler = Callable[[dict], dict | None]
StateHandler = Callable[[topics.Topic, dict | None], None]


class NodeRuntime:
    def __init__(
        self,
        settings: Settings,
        kind: str,
        devices: Callable[[], dict[str, str]] = dict,
        extra_health: Callable[[], dict[str, Any]] = dict,
        on_state: StateHandler | None = None,
        version: str = __version__,
        keep_state: bool = False,
    ):
        if not settings.node.id:
            raise ValueError("this node has no id: set [node] id in the config or CONGSO_NODE_ID")
        self.settings = settings
        self.kind = kind
        self.node_id = topics.check_node_id(settings.node.id)
        self.site = topics.check_site_id(settings.site.id)
        self.tz = settings.site.timezone
        self.clock = clock.ClockStatus(settings.clock.synced)
        self.devices = devices
        self.extra_health = extra_health
        self.on_state = on_state
        self.commands: dict[str, CommandHandler] = {}
        self.rejects = RejectLog(log)
        self.outbox = Outbox(settings.data_dir / "outbox.sqlite", self.node_id, settings.outbox.keep_acked_days)
        # A damaged outbox is reported in health (devices: outbox error) so
        # `congso nodes` alerts, instead of every scan failing unseen.
        self.outbox_damage: str | None = None  # found at start: stays until the file is dealt with
        self.outbox_write_error: str | None = None  # the last add failed; cleared by one that works
        problems = dbcheck.check(self.outbox.path, quick=True)
        if problems:
            self.outbox_damage = "; ".join(problems[:3])
            log.error("%s", dbcheck.outbox_advice(self.outbox.path, problems))
        # keep_state: every valid retained state is also kept on disk, for
        # the next boot without a network (see statecache).
        self.state_cache = StateCache(settings.data_dir / "state") if keep_state else None
        self.started_at = time.monotonic()

        self._ack_topic = topics.ack(self.site, self.node_id)
        self._cmd_topic = topics.cmd(self.site, self.node_id)
        self.link = MqttLink(
            settings,
            client_id=self.node_id,
            kind=kind,
            version=version,
            subscriptions=[(self._ack_topic, 1), (self._cmd_topic, 1), (topics.all_state(self.site), 1)],
            handler=self._handle,
        )
        self.link.on_connected.append(self._after_connect)

        self._wake = threading.Event()
        self._stop = threading.Event()
        self._inflight: dict[str, float] = {}  # event_id -> monotonic time published
        self._inflight_lock = threading.Lock()
        self._replay_all = True
        self._cursor = 0  # highest seq published since the last full replay
        self._gateway_since: str | None = None  # the last gateway beacon seen
        self._commands: "queue.Queue[dict]" = queue.Queue()
        self._threads: list[threading.Thread] = []
        self.acked = 0  # events acked since start (for status and tests)
        self._health_now = False
        self._health_wake = threading.Event()
        # Acked events the gateway asked for again (an ack's
        # resend_after_seq, docs/protocol.md §4.5), re-published after this
        # seq; None when nothing is asked.
        self._resend_cursor = self.outbox.resend_cursor()

    # -- public ---------------------------------------------------------------
    def record(self, kind: str, fields: dict, ts: str | None = None) -> dict:
        """Commit an event to the outbox; after this returns, feedback may be given.

        ``ts``: when it happened, if not now (a TV's ``play`` is sent when the
        showing ends and stamped with its start).

        Raises ``OutboxError`` when it could not be stored: then give an
        error signal, not success.
        """
        try:
            event = self.outbox.add(kind, fields, ts=ts or clock.now_iso(self.tz), clock_synced=self.clock.synced())
        except OutboxError as e:
            if self.outbox_error is None:
                log.error("%s", dbcheck.outbox_advice(self.outbox.path, str(e.__cause__ or e)))
            self.outbox_write_error = str(e)
            raise
        self.outbox_write_error = None
        self._wake.set()
        return event

    def start(self) -> None:
        self.link.start()
        for target, name in ((self._sender, "sender"), (self._heartbeat, "health"), (self._command_worker, "commands")):
            t = threading.Thread(target=target, name=f"{name}-{self.node_id}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._health_wake.set()
        self._commands.put({})
        for t in self._threads:
            t.join(5)
        self.link.stop()
        self.outbox.close()

    @property
    def outbox_error(self) -> str | None:
        return self.outbox_damage or self.outbox_write_error

    def uptime_s(self) -> float:
        return round(time.monotonic() - self.started_at, 1)

    def health_payload(self) -> dict:
        devices = dict(self.devices())
        try:
            depth, oldest = self.outbox.depth(), self.outbox.oldest_age_s()
        except sqlite3.Error as e:  # a damaged outbox: say so, keep reporting
            self.outbox_damage = self.outbox_damage or str(e)
            depth, oldest = 0, None
        if self.outbox_error:
            devices["outbox"] = "error"
        payload = {
            "v": messages.VERSION,
            "node_id": self.node_id,
            "ts": clock.now_iso(self.tz),
            "uptime_s": self.uptime_s(),
            "outbox": depth,
            "clock_synced": self.clock.synced(),
            "devices": devices,
            # Added fields (docs/protocol.md): how stale the oldest unacked
            # event is, how many bad messages this node has rejected, and
            # how often it reports (the gateway judges it by that).
            "outbox_oldest_s": oldest,
            "rejected": self.rejects.total(),
            "kind": self.kind,
            "interval_s": float(self.settings.health.interval_s),
        }
        payload.update(self.extra_health())
        return payload

    # -- incoming ---------------------------------------------------------------
    def _handle(self, item: Incoming) -> None:
        try:
            where = topics.parse(item.topic)
        except ValueError as e:
            self.rejects.reject("broker", item.topic, str(e))
            return
        try:
            if where.kind == "ack":
                ack = messages.decode("ack", item.payload)
                self._on_ack(ack["event_ids"])
                if ack.get("resend_after_seq") is not None:
                    self.resend_after(ack["resend_after_seq"])
            elif where.kind == "cmd":
                self._on_cmd(item.payload)
            elif where.kind in ("state", "desk"):
                self._on_state(where, item.payload)
        except messages.MessageError as e:
            self.rejects.reject("gateway", item.topic, str(e))

    def _on_ack(self, event_ids: list[str]) -> None:
        removed = self.outbox.ack(event_ids)
        self.acked += removed
        with self._inflight_lock:
            for eid in event_ids:
                self._inflight.pop(eid, None)
        self._wake.set()

    def _on_state(self, where: topics.Topic, payload: bytes) -> None:
        if where.kind == "state" and where.leaf == "gateway":
            self._on_gateway_beacon(messages.decode("gateway", payload))
            return
        if self.on_state is None:
            return
        if where.kind == "desk" and not payload:
            if self.state_cache is not None:
                self.state_cache.save(f"desk/{where.leaf}", None)
            self.on_state(where, None)  # an empty retained payload clears the desk session
            return
        name = f"desk/{where.leaf}" if where.kind == "desk" else where.leaf
        message = messages.decode(messages.state_kind(name), payload)  # raises: the last good state stays
        if self.state_cache is not None:
            self.state_cache.save(name, message)
        self.on_state(where, message)

    def cached_state(self) -> dict[str, dict]:
        """The state kept on disk by earlier runs: ``{"roster": {...}, "desk/<id>": {...}}``."""
        return self.state_cache.load_all() if self.state_cache is not None else {}

    def _on_gateway_beacon(self, beacon: dict) -> None:
        # A gateway that came up without a broker session missed whatever we
        # published before it subscribed: re-send everything unacked now.
        if beacon["since"] == self._gateway_since:
            return
        self._gateway_since = beacon["since"]
        if not beacon["session_present"]:
            log.info("gateway (re)subscribed at %s without a stored session: re-sending unacked events", beacon["since"])
            self._replay_all = True
            self._wake.set()

    def _on_cmd(self, payload: bytes) -> None:
        try:
            command = messages.decode("cmd", payload)
        except messages.MessageError as e:
            cmd_id = _salvage_cmd_id(payload)
            self.rejects.reject("gateway", self._cmd_topic, str(e))
            if cmd_id:
                self._reply({"v": 1, "cmd_id": cmd_id, "ok": False, "error": f"bad command: {e}"})
            return
        # Commands may take seconds (enrolment): run them off the inbox worker
        # so acks keep flowing meanwhile.
        self._commands.put(command)

    def _command_worker(self) -> None:
        while not self._stop.is_set():
            command = self._commands.get()
            if not command:
                continue
            name, cmd_id = command["cmd"], command["cmd_id"]
            handler = self.commands.get(name)
            if handler is None:
                known = ", ".join(sorted(self.commands)) or "none"
                self._reply({"v": 1, "cmd_id": cmd_id, "ok": False, "error": f"unknown command {name!r}; this {self.kind} node knows: {known}"})
                continue
            # The command being run (one at a time, on this thread): its handler may
            # report steps on node/<node>/progress under this cmd_id (attendance_node/enrol.py).
            self.running_cmd_id = cmd_id
            try:
                result = handler(command.get("args") or {}) or {}
                reply = {"v": 1, "cmd_id": cmd_id, "ok": True, "result": result}
            except Exception as e:  # a command never crashes a node
                log.exception("command %s failed", name)
                reply = {"v": 1, "cmd_id": cmd_id, "ok": False, "error": f"{name} failed: {e}"}
            self._reply(reply)

    def _reply(self, reply: dict) -> None:
        try:
            data = messages.encode("reply", reply)
        except messages.MessageError as e:
            data = messages.encode("reply", {"v": 1, "cmd_id": reply["cmd_id"], "ok": False, "error": f"reply not sendable: {e}"})
        self.link.publish(topics.reply(self.site, self.node_id), data, qos=1)

    def _write_status(self, health: bytes) -> None:
        view = json.loads(health)
        view["connected"] = self.link.connected.is_set()
        view["broker"] = f"{self.settings.mqtt.host}:{self.settings.mqtt.port}"
        view["pid"] = os.getpid()
        try:
            write_atomic(status_path(self.settings), messages.dumps(view))
        except OSError as e:
            log.debug("could not write %s: %s", status_path(self.settings), e)

    # -- outgoing -----------------------------------------------------------------
    def _after_connect(self) -> None:
        # Runs on the network thread: only flag and wake.
        self._replay_all = True
        self._health_now = True  # health right after connecting (docs/protocol.md), not an interval later
        self._health_wake.set()
        self._wake.set()

    def _sender(self) -> None:
        o = self.settings.outbox
        window = max(1, int(o.window))
        while not self._stop.is_set():
            self._wake.wait(timeout=min(1.0, o.replay_after_s / 2))
            self._wake.clear()
            if not self.link.connected.is_set():
                continue
            try:
                self._send_some(window, o.replay_after_s)
            except Exception:
                log.exception("sender failed; will retry")
                self._stop.wait(1.0)

    def _send_some(self, window: int, replay_after_s: float) -> None:
        now = time.monotonic()
        with self._inflight_lock:
            if self._replay_all:
                self._replay_all = False
                self._inflight.clear()
                self._cursor = 0
            stale = [eid for eid, sent in self._inflight.items() if now - sent > replay_after_s]
        if stale:
            events = self.outbox.get(stale)
            with self._inflight_lock:
                for eid in stale:
                    self._inflight.pop(eid, None)  # acked meanwhile, or about to be re-sent
            log.info("re-publishing %d events not acked after %.0f s", len(events), replay_after_s)
            self._publish(events, now)
        while not self._stop.is_set() and self.link.connected.is_set():
            with self._inflight_lock:
                room = window - len(self._inflight)
                cursor = self._cursor
            if room <= 0:
                return
            batch = self.outbox.after(cursor, min(room, 200))
            if not batch:
                break  # unacked ones all out: room left for what the gateway asked for again
            self._publish(batch, now)
            with self._inflight_lock:
                self._cursor = max(self._cursor, batch[-1].seq)
        self._send_kept(window, now)

    def resend_after(self, after: int) -> dict:
        """The gateway holds nothing from us after seq ``after`` (restored from a backup): send again what we kept."""
        summary = self.outbox.kept_summary(after)
        with self._inflight_lock:
            self._resend_cursor = after if self._resend_cursor is None else min(self._resend_cursor, after)
            self.outbox.set_resend_cursor(self._resend_cursor)
        log.info("gateway asked for every event after seq %d: re-sending the %d acked events kept here (and %d unacked)",
                 after, summary["acked_kept"], summary["unacked"])
        oldest, last = summary["oldest_kept_seq"], self.outbox.last_seq()
        if last > after and (oldest is None or oldest > after + 1):
            log.warning("events %d..%d are no longer kept here (older than [outbox] keep_acked_days): "
                        "the gateway cannot have them back", after + 1, (oldest - 1) if oldest else last)
        self._wake.set()
        return summary

    def _send_kept(self, window: int, now: float) -> None:
        # Within the same window as new events: a long resend never floods the broker.
        while not self._stop.is_set() and self.link.connected.is_set():
            with self._inflight_lock:
                cursor, room = self._resend_cursor, window - len(self._inflight)
            if cursor is None or room <= 0:
                return
            batch = self.outbox.acked_after(cursor, min(room, 200))
            with self._inflight_lock:
                if self._resend_cursor != cursor:
                    continue  # a new request meanwhile: start from its seq
                self._resend_cursor = batch[-1].seq if batch else None
                self.outbox.set_resend_cursor(self._resend_cursor)
            if not batch:
                log.info("re-sent every kept event the gateway asked for")
                return
            self._publish(batch, now)

    def _publish(self, events, now: float) -> None:
        for ev in events:
            with self._inflight_lock:
                self._inflight[ev.event_id] = now
            self.link.publish(topics.node_topic(self.site, self.node_id, ev.kind), ev.payload, qos=1)

    def _heartbeat(self) -> None:
        interval = float(self.settings.health.interval_s)
        next_at = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= next_at or (self._health_now and self.link.connected.is_set()):
                self._health_now = False
                try:
                    payload = messages.encode("health", self.health_payload())
                    if self.link.connected.is_set():
                        self.link.publish(topics.health(self.site, self.node_id), payload, qos=0)
                    # The node's own view for `congso status` on the node,
                    # written connected or not (that is when it matters).
                    self._write_status(payload)
                except Exception:
                    log.exception("could not build the health message")
                next_at = time.monotonic() + interval
            self._health_wake.wait(min(1.0, interval))
            self._health_wake.clear()


def status_path(settings: Settings) -> Path:
    return settings.data_dir / "status.json"


def _salvage_cmd_id(payload: bytes) -> str | None:
    """The cmd_id of a command too broken to run, so the sender still gets an answer."""
    try:
        obj = json.loads(payload)
        cmd_id = obj.get("cmd_id") if isinstance(obj, dict) else None
        return cmd_id if isinstance(cmd_id, str) and cmd_id else None
    except (ValueError, UnicodeDecodeError):
        return None
