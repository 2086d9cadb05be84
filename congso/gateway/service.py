"""``congso gateway run``: the long-running gateway process.

Receives every node's messages (``congso/<site>/node/+/+``), stores them in
batches (up to ``[gateway] batch_max`` messages or ``batch_wait_s``,
whichever comes first), and acks each node's events after the commit.

SIGTERM or SIGINT: the batch in hand and whatever is already queued are
stored and acked, the retained status becomes ``offline``, and the process
exits 0.

The database file removed or replaced under it (``integrity.FileWatch``):
nothing more is acked, health and log say so, and the process exits with
``EXIT_DATABASE_GONE`` so that systemd starts it again on the real file; the
nodes still hold every event not acked. A damaged database stops the start
with advice (``integrity.start_check``). Anything the broker delivers after that is still in the nodes'
outboxes and will be re-sent to the next gateway.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from pathlib import Path

from .. import __version__
from ..protocol import clock, messages, topics, watchdog
from ..protocol.link import Incoming, MqttLink
from ..protocol.rejects import RejectLog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ..protocol.settings import Settings
from . import commands, domains, integrity, privacy, resend, state
from .backup import GatewayRunning, RunLock
from .db import open_db
from .ingest import BatchResult, Ingest

log = logging.getLogger(__name__)

GATEWAY_ID = topics.GATEWAY_ID
ACK_CHUNK = 1000  # ~40 KB of event ids: stays under the 64 KiB payload limit
EXIT_DATABASE_GONE = 3  # systemd's Restart=on-failure starts us again on the real file


def db_path(settings: Settings) -> Path:
    return settings.data_dir / "gateway.sqlite"


class Gateway:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.site = topics.check_site_id(settings.site.id)
        self.tz = settings.site.timezone
        try:
            integrity.start_check(db_path(settings))
        except integrity.DatabaseDamaged as e:
            raise SystemExit(f"congso gateway run: {e}") from None
        try:  # the key that seals fingerprint templates in the database (privacy.py)
            privacy.configure(settings)
        except (privacy.PrivacyError, OSError) as e:
            raise SystemExit(f"congso gateway run: {e}") from None
        self.db = open_db(db_path(settings))
        self.watch = integrity.FileWatch(db_path(settings))
        self.fatal: str | None = None  # the database file is gone: no more acks, exit
        self._clock_status = clock.ClockStatus(settings.clock.synced)
        # What we hold from each node, read before anything new is stored (resend.py).
        self.resend = resend.ResendAsker(self.db)
        self.rejects = RejectLog(log)
        g = settings.gateway
        self.ingest = Ingest(self.db, self.site, self.tz, self.rejects,
                             max_ahead_h=float(g.max_ahead_h), max_behind_days=float(g.max_behind_days))
        self.link = MqttLink(
            settings,
            client_id=GATEWAY_ID,
            kind="gateway",
            version=__version__,
            subscriptions=[(topics.all_node_topics(self.site), 1)],
        )
        self.link.on_connected.append(self._announce)
        self.started_at = time.monotonic()
        self._stop = threading.Event()
        self.db_error: str | None = None  # the last failed batch's error, until one succeeds
        # Retained state and queued commands go out from a thread of their
        # own, on a connection of its own (sqlite connections are not shared
        # across threads here).
        # Every domain, from the one list (domains.py): its builders here, its reply hooks in _handle.
        self.reply_hooks = state.reply_hooks(domains.DOMAINS)
        self.publisher = state.Publisher(open_db(db_path(settings)), settings, self._publish, domains.DOMAINS)
        self.commands = commands.Sender(self.publisher.db, self.site, self.tz, self._publish_command)
        self.publisher.on_tick.append(self.commands.tick)
        # Deletions asked again until each door confirms; old attendance events pruned once a day.
        self.privacy = privacy.Rounds(self.publisher.db, settings)
        self.publisher.on_tick.append(self.privacy.tick)

    def request_stop(self, *_args) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> None:
        """Serve until ``request_stop``; then finish cleanly."""
        log.info("gateway for site %s, database %s", self.site, db_path(self.settings))
        try:  # one gateway per data dir; `congso gateway restore` checks this lock
            self._run_lock = RunLock(self.settings.data_dir).acquire()
        except GatewayRunning as e:
            raise SystemExit(f"congso gateway run: {e}") from None
        self.link.start()
        health = threading.Thread(target=self._heartbeat, name="gateway-health", daemon=True)
        health.start()
        publisher = threading.Thread(target=self._publish_state, name="gateway-state", daemon=True)
        publisher.start()
        # systemd (Type=notify): serving now; the watchdog is fed from this
        # loop, so a stuck ingest gets the service restarted.
        dog = watchdog.Watchdog()
        watchdog.ready(f"gateway for site {self.site}")
        while not self._stop.is_set():
            dog.ping()
            batch = self._take_batch(wait=0.5)
            if batch:
                self._handle(batch)
        # Clean shutdown: store and ack what we already received.
        watchdog.stopping()
        while self.fatal is None:
            batch = self._take_batch(wait=0)
            if not batch:
                break
            self._handle(batch)
        publisher.join(5)
        self.link.stop()
        # Closing checkpoints the write-ahead log and removes it, so none is
        # left beside a removed file for the next start to replay.
        self.db.conn.close()
        self.watch.close()
        self._run_lock.release()
        log.info("gateway stopped: %s", self.ingest.totals)
        if self.fatal:
            log.critical("exiting with status %d: %s; start again on the real database file",
                         EXIT_DATABASE_GONE, self.fatal)
            raise SystemExit(EXIT_DATABASE_GONE)

    def _announce(self) -> None:
        """Tell the nodes we are subscribed (retained ``state/gateway``).

        Runs on the network thread right after the subscribe, so the broker
        has our subscription before any node sees this. When the broker kept
        no session for us, whatever nodes published meanwhile went nowhere:
        the beacon makes them re-send it now rather than after
        ``[outbox] replay_after_s``.
        """
        beacon = {
            "v": 1,
            "since": clock.now_iso(self.tz),
            "session_present": self.link.session_present,
            "version": __version__,
        }
        self.link.publish(topics.state(self.site, "gateway"), messages.encode("gateway", beacon), qos=1, retain=True)

    def _take_batch(self, wait: float) -> list[Incoming]:
        g = self.settings.gateway
        inbox = self.link.inbox
        try:
            first = inbox.get(timeout=wait) if wait > 0 else inbox.get_nowait()
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + g.batch_wait_s
        while len(batch) < g.batch_max:
            remaining = deadline - time.monotonic()
            try:
                batch.append(inbox.get(timeout=remaining) if remaining > 0 else inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, batch: list[Incoming]) -> BatchResult:
        try:
            result = self.ingest.process(batch)
        except Exception as e:
            # A database error (disk full, I/O): nothing was acked, so the
            # nodes keep their events and re-send them. Pause and go on.
            self.db_error = str(e)
            log.exception("could not store a batch of %d messages; the nodes will re-send", len(batch))
            self._stop.wait(1.0)
            return BatchResult()
        self.db_error = None
        # The commit went to the file we opened: is that still the database
        # the next start opens? If not, an ack would promise a lost event.
        gone = self.fatal or self.watch.problem()
        if gone:
            self._database_gone(gone)
            return BatchResult()
        try:
            ask = self.resend.due(batch, result.acks)
        except Exception:  # asking for a resend never stops ingest
            log.exception("could not ask a node to re-send its events")
            ask = {}
        self.publish_acks(result.acks, ask)
        if result.replies:
            commands.run_reply_hooks(self.db, result.replies, self.reply_hooks)
        try:  # a door back online: the deletions it missed are asked again at once
            back = privacy.doors_online(batch, self.site)
            if back and privacy.retry_deletions(self.db, self.tz, back_online=back):
                self.publisher.poke()
        except Exception:
            log.exception("could not ask the doors back online for their pending deletions")
        if result.stored or result.replies or result.duty_changed:
            self.publisher.poke()
        return result

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.link.publish(topic, payload, qos=1, retain=retain)

    def _publish_command(self, topic: str, payload: bytes, expiry_s: int) -> None:
        # MQTT 5 message expiry: a node away past the command's deadline never
        # gets it from the broker's queue either.
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = int(expiry_s)
        self.link.client.publish(topic, payload, qos=1, properties=props)

    def _database_gone(self, problem: str) -> None:
        """Stop acking for good, say so, and stop (the caller exits non-zero)."""
        if self.fatal is None:
            self.fatal = problem
            self.db_error = problem
            log.critical("%s: NOT acking any more events (the nodes keep them); stopping so that "
                         "systemd restarts the gateway on the real database file", problem)
            try:
                self._publish_health()
            except Exception:
                log.exception("could not report the lost database in health")
        self._stop.set()

    def _publish_state(self) -> None:
        # Wait for the first connection, so the first round goes straight out.
        self.link.wait_connected(10)
        while not self._stop.is_set():
            try:
                self.publisher.tick()
            except Exception:
                log.exception("publishing state failed; retrying")
                self._stop.wait(1.0)
            self._stop.wait(state.TICK_S)
        self.publisher.db.conn.close()

    def publish_acks(self, acks: dict[str, list[str]], resend_after: dict[str, int] | None = None) -> None:
        """Acks per node; ``resend_after`` (resend.py) rides on a node's first ack, or on one with no ids."""
        resend_after = resend_after or {}
        for node_id in [*acks, *(n for n in resend_after if n not in acks)]:
            ids = acks.get(node_id, [])
            if not ids and node_id not in resend_after:
                continue
            for i in range(0, max(len(ids), 1), ACK_CHUNK):
                ack = {"v": messages.VERSION, "event_ids": ids[i : i + ACK_CHUNK]}
                if i == 0 and node_id in resend_after:
                    ack["resend_after_seq"] = resend_after[node_id]
                self.link.publish(topics.ack(self.site, node_id), messages.encode("ack", ack), qos=1)

    def _heartbeat(self) -> None:
        """The gateway reports like a node, so `congso nodes` lists it too."""
        interval = float(self.settings.health.interval_s)
        while not self._stop.is_set():
            problem = self.watch.problem()
            if problem:  # noticed even when no event comes
                self._database_gone(problem)
                return
            self._publish_health()
            self._stop.wait(interval)

    def _publish_health(self) -> None:
        if not self.link.connected.is_set():
            return
        payload = {
            "v": messages.VERSION,
            "node_id": GATEWAY_ID,
            "ts": clock.now_iso(self.tz),
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "outbox": 0,
            "clock_synced": self._clock_status.synced(),
            "devices": {"database": "error" if self.db_error else "ok"},
            "kind": "gateway",
            "interval_s": float(self.settings.health.interval_s),
            "queued": self.link.inbox.qsize(),
            **self.ingest.totals,
        }
        if self.db_error:
            payload["database_error"] = self.db_error
        self.link.publish(topics.health(self.site, GATEWAY_ID), messages.encode("health", payload), qos=0)
