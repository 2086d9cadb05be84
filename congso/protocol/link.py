"""The MQTT link every congso program uses to reach the broker.

What it does, per the wire contract:

- paho-mqtt 2.x with ``CallbackAPIVersion.VERSION2`` and MQTT 5;
- a stable client id (the node id, or ``gateway``), ``clean_start=False``
  and a session expiry, so the broker keeps QoS 1 messages for us while we
  are away;
- a retained ``online`` status on every connect, and the same with
  ``offline`` as the last will (and published on a clean stop);
- subscriptions made in ``on_connect`` (they survive a broker that lost its
  persistence file);
- reconnect with exponential backoff and jitter, so a hundred nodes do not
  hammer a broker that just came back at the same instant;
- paho's callbacks never block: messages go to ``inbox`` and a worker thread
  (or the owner, e.g. the gateway's batcher) takes them from there;
- the gateway's link keeps the broker's retained store to what the contract
  puts there: a retained message on a node topic other than a (small)
  ``status`` is cleared at once (an empty retained publish), so a node
  cannot make the broker keep megabytes across restarts. Mosquitto's ACL
  cannot refuse "retain" on a topic it allows, so the one who reads every
  node topic sweeps them.
"""

from __future__ import annotations

import logging
import queue
import random
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from . import clock, messages, topics
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    received: float  # time.monotonic()


def backoff_delay(attempt: int, low: float, high: float) -> float:
    """Exponential backoff with jitter: somewhere in [cap/2, cap], cap = low * 2**attempt, at most high."""
    cap = min(high, low * (2 ** min(attempt, 16)))
    return random.uniform(cap / 2, cap)


class MqttLink:
    """One connection to the broker, kept up until ``stop()``.

    ``handler(incoming)`` is called from the link's worker thread for every
    message when given; otherwise messages wait in ``inbox`` for the owner.
    ``on_connected()`` hooks run on the network thread and must not block.
    """

    def __init__(
        self,
        settings: Settings,
        client_id: str,
        kind: str,
        version: str,
        subscriptions: Iterable[tuple[str, int]] = (),
        handler: Callable[[Incoming], None] | None = None,
    ):
        self.settings = settings
        self.site = settings.site.id
        self.client_id = topics.check_node_id(client_id)
        self.kind = kind
        self.version = version
        self.subscriptions = list(subscriptions)
        self.handler = handler
        self.inbox: "queue.Queue[Incoming]" = queue.Queue()
        self.connected = threading.Event()
        self.on_connected: list[Callable[[], None]] = []
        self.session_present = False  # of the last connect: did the broker keep our session?
        self.connects = 0  # successful connections so far
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._status_topic = topics.status(self.site, self.client_id)
        self._since = clock.now_iso(settings.site.timezone)
        # Only the gateway sweeps: it is the one client that reads node topics.
        self._sweeps_retained = self.client_id == topics.GATEWAY_ID
        self._node_prefix = f"{topics.ROOT}/{self.site}/node/"
        self._swept: set[str] = set()  # topics we cleared, whose empty echo is ours
        self._swept_logged: dict[str, float] = {}  # node -> monotonic time of the last warning

        m = settings.mqtt
        if m.session_expiry_s < 86400:
            raise ValueError(
                f"[mqtt] session_expiry_s is {m.session_expiry_s}: the wire contract needs at least 86400 (one day), "
                "so the broker keeps acks and commands for a node that is away overnight"
            )
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
        )
        if m.username:
            self.client.username_pw_set(m.username, m.password or None)
        if m.tls_ca and not Path(m.tls_ca).is_file():
            raise ValueError(f"[mqtt] tls_ca {m.tls_ca} does not exist: copy the office CA from the gateway's "
                             "/etc/congso/broker/tls/ca.crt (docs/operations.md, TLS)")
        if m.tls_ca:
            # The office CA (made by `congso broker config`); the broker's name
            # or address must be in its certificate, so [mqtt] host is checked too.
            self.client.tls_set(ca_certs=m.tls_ca, cert_reqs=ssl.CERT_REQUIRED)
        # Outgoing QoS 1 messages in flight at once; more are queued by paho.
        self.client.max_inflight_messages_set(100)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._set_will()

    # -- status payloads -------------------------------------------------
    def status_payload(self, state: str) -> bytes:
        return messages.encode(
            "status",
            {
                "v": messages.VERSION,
                "node_id": self.client_id,
                "kind": self.kind,
                "state": state,
                "version": self.version,
                "since": self._since,
            },
        )

    def _set_will(self) -> None:
        # The will's "since" is the time we connected: the broker sends it
        # later, when it notices we are gone.
        self._since = clock.now_iso(self.settings.site.timezone)
        self.client.will_set(self._status_topic, self.status_payload("offline"), qos=1, retain=True)

    # -- paho callbacks (network thread: never block) ---------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            log.error("%s: %s", self.client_id, self.last_error)
            return
        self.connects += 1
        self.last_error = None
        log.info(
            "%s connected to %s:%s (session %s)",
            self.client_id,
            self.settings.mqtt.host,
            self.settings.mqtt.port,
            "resumed" if flags.session_present else "new",
        )
        self.session_present = bool(flags.session_present)
        # Subscribe before announcing ourselves: whoever sees "online" may
        # rely on our subscription existing (the broker handles one client's
        # packets in order).
        if self.subscriptions:
            client.subscribe([self._subscription(t, q) for t, q in self.subscriptions])
        client.publish(self._status_topic, self.status_payload("online"), qos=1, retain=True)
        self.connected.set()
        for hook in self.on_connected:
            try:
                hook()
            except Exception:  # a hook's bug must not kill the network thread
                log.exception("on_connected hook failed")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if self.connected.is_set():
            log.warning("%s disconnected from broker: %s", self.client_id, reason_code)
        self.connected.clear()

    def _subscription(self, topic: str, qos: int):
        if self._sweeps_retained and topic.startswith(self._node_prefix):
            # Retain-as-published: a live retained publish arrives with its
            # retain flag, so it is swept at once, not only at our next connect.
            return topic, SubscribeOptions(qos=qos, retainAsPublished=True)
        return topic, qos

    def _on_message(self, client, userdata, msg):
        payload = bytes(msg.payload)
        if self._sweeps_retained and msg.topic.startswith(self._node_prefix):
            if not payload and msg.topic in self._swept:
                self._swept.discard(msg.topic)  # the echo of our own clearing
                return
            if msg.retain and payload and self._retained_outside_contract(msg.topic, payload):
                self._sweep(client, msg.topic, len(payload))
        self.inbox.put(Incoming(msg.topic, payload, time.monotonic()))

    def _retained_outside_contract(self, topic: str, payload: bytes) -> bool:
        """Only a node's ``status`` is retained, and a status is a small JSON object."""
        leaf = topic.rsplit("/", 1)[-1]
        return leaf != "status" or len(payload) > messages.MAX_PAYLOAD

    def _sweep(self, client, topic: str, size: int) -> None:
        self._swept.add(topic)
        client.publish(topic, b"", qos=1, retain=True)
        node = topic[len(self._node_prefix):].split("/", 1)[0]
        now = time.monotonic()
        if now - self._swept_logged.get(node, float("-inf")) >= 60:  # once a minute per node: no log flood
            self._swept_logged[node] = now
            log.warning("cleared a retained message of %d bytes on %s: only a node's status is retained "
                        "(a misbehaving or hostile client with %s's password?)", size, topic, node)

    # -- life cycle --------------------------------------------------------
    def start(self) -> None:
        t = threading.Thread(target=self._network_loop, name=f"mqtt-{self.client_id}", daemon=True)
        t.start()
        self._threads.append(t)
        if self.handler is not None:
            w = threading.Thread(target=self._worker, name=f"inbox-{self.client_id}", daemon=True)
            w.start()
            self._threads.append(w)

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(self.settings.mqtt.session_expiry_s)
        return props

    def _network_loop(self) -> None:
        m = self.settings.mqtt
        attempt = 0
        first = True
        while not self._stop.is_set():
            try:
                if first:
                    self.client.connect(
                        m.host,
                        m.port,
                        keepalive=m.keepalive_s,
                        clean_start=False,
                        properties=self._connect_properties(),
                    )
                    first = False
                else:
                    self._set_will()
                    self.client.reconnect()
            except (OSError, mqtt.WebsocketConnectionError, ValueError) as e:
                self.last_error = f"cannot reach broker {m.host}:{m.port}: {e}"
                delay = backoff_delay(attempt, m.reconnect_min_s, m.reconnect_max_s)
                if attempt == 0 or attempt % 10 == 0:
                    log.warning("%s: %s; retrying in %.1f s", self.client_id, self.last_error, delay)
                attempt += 1
                self._stop.wait(delay)
                continue
            connects_before = self.connects
            while not self._stop.is_set():
                rc = self.client.loop(timeout=0.5)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    break
            self.connected.clear()
            if self._stop.is_set():
                break
            attempt = 0 if self.connects > connects_before else attempt + 1
            delay = backoff_delay(attempt, m.reconnect_min_s, m.reconnect_max_s)
            self._stop.wait(delay)

    def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.handler(item)
            except Exception:  # never let one message stop the worker
                log.exception("%s: error handling message on %s", self.client_id, item.topic)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``offline``, disconnect cleanly and stop the threads."""
        if self.connected.is_set():
            try:
                info = self.client.publish(self._status_topic, self.status_payload("offline"), qos=1, retain=True)
                info.wait_for_publish(timeout=min(timeout, 2.0))
            except (RuntimeError, ValueError):
                pass
        # Stop the network loop first so it does not reconnect, then say goodbye.
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        try:
            self.client.disconnect()
        except (OSError, ValueError):
            pass
        self.connected.clear()
