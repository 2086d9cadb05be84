"""A plain paho client for tests that speak MQTT directly (ACL, raw payloads)."""

from __future__ import annotations

import queue
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class RawClient:
    """Connects as ``username``; collects messages; publishes and reports reason codes."""

    def __init__(self, port: int, username: str | None, password: str | None, client_id: str | None = None):
        self.messages: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
        self.connack = threading.Event()
        self.reason_code = None
        self.puback: dict[int, object] = {}
        self._puback_event = threading.Condition()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.connack.wait(10)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.reason_code = reason_code
        self.connack.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._puback_event:
            self.puback[mid] = reason_code
            self._puback_event.notify_all()

    @property
    def accepted(self) -> bool:
        return self.reason_code is not None and not self.reason_code.is_failure

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos)
        done.wait(5)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False):
        """Publish and return the broker's PUBACK reason code (QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        with self._puback_event:
            self._puback_event.wait_for(lambda: info.mid in self.puback, timeout=10)
            return self.puback.get(info.mid)

    def get(self, timeout: float = 5.0):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
