"""Broker security from the generated config: no node speaks for another."""

from __future__ import annotations

import json
import os
import queue
import stat
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from congso.ops import broker as broker_mod
from congso.protocol import topics
from mqtt_helpers import RawClient

from conftest import SITE, fresh_broker, start_gateway, wait_for

NOT_AUTHORIZED = 135



# Exact counts: a broker of this module's own (see conftest.fresh_broker).
broker = pytest.fixture(scope="module")(fresh_broker)

@pytest.fixture
def gateway_client(broker):
    c = RawClient(broker.port, "gateway", broker.credentials["gateway"])
    assert c.accepted
    yield c
    c.close()


def test_generated_files_follow_the_contract(broker):
    conf_dir = broker.dir / "conf"
    conf = (conf_dir / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "password_file" in conf and "acl_file" in conf
    assert "use_username_as_clientid true" in conf and "max_queued_bytes" in conf and "max_packet_size" in conf
    acl = (conf_dir / "acl").read_text()
    # exactly the leaves of the protocol, no wildcard under which to retain made-up topics
    own = "".join(f"topic write congso/{SITE}/node/node-a/{leaf}\n" for leaf in topics.NODE_LEAVES)
    # reads: public state, desk sessions, and its own roster only (no other door's cards)
    reads = (f"topic read congso/{SITE}/state/+\ntopic read congso/{SITE}/state/desk/+\n"
             f"topic read congso/{SITE}/state/roster/node-a/#\n")
    assert f"user node-a\n{own}{reads}" in acl
    assert f"congso/{SITE}/state/#" not in acl
    assert f"topic read congso/{SITE}/ack/node-a\ntopic read congso/{SITE}/cmd/node-a\n" in acl
    assert "node/node-a/#" not in acl
    creds = json.loads((conf_dir / "credentials.json").read_text())
    assert set(creds) == {"gateway", "technician", "node-a", "node-b", "node-c", "node-d", "door-1", "kiosk-1", "tv-1"}
    assert stat.S_IMODE(os.stat(conf_dir / "credentials.json").st_mode) == 0o600
    # passwords are hashed in the password file, never in plain text
    passwd = (conf_dir / "passwd").read_text()
    assert creds["node-a"] not in passwd and passwd.startswith("gateway:$")


def test_rerun_keeps_passwords_and_adds_nodes(tmp_path):
    out = tmp_path / "conf"
    first = broker_mod.generate(out, "ky-chau", ["door-1"], run_as="root")
    second = broker_mod.generate(out, "ky-chau", ["door-1", "tv-1"], run_as="root")
    assert second["door-1"] == first["door-1"] and second["gateway"] == first["gateway"]
    assert "tv-1" in second and "user tv-1" in (out / "acl").read_text()


def test_bad_ids_are_refused(tmp_path):
    with pytest.raises(ValueError, match="invalid node id"):
        broker_mod.generate(tmp_path / "c", "ky-chau", ["Door 1"], run_as="root")
    with pytest.raises(broker_mod.BrokerConfigError, match="gateway's own user"):
        broker_mod.generate(tmp_path / "c", "ky-chau", ["gateway"], run_as="root")
    with pytest.raises(broker_mod.BrokerConfigError, match="technician's own user"):
        broker_mod.generate(tmp_path / "c", "ky-chau", ["technician"], run_as="root")


def test_anonymous_and_wrong_password_are_refused(broker):
    anonymous = RawClient(broker.port, None, None)
    wrong = RawClient(broker.port, "node-a", "not-the-password")
    try:
        assert anonymous.reason_code is not None and anonymous.reason_code.is_failure
        assert wrong.reason_code is not None and wrong.reason_code.is_failure
    finally:
        anonymous.close()
        wrong.close()


def test_node_writes_only_its_own_topics(broker, gateway_client):
    gateway_client.subscribe(f"congso/{SITE}/#")
    node = RawClient(broker.port, "node-a", broker.credentials["node-a"])
    try:
        assert node.accepted
        own = node.publish(f"congso/{SITE}/node/node-a/attendance", b'{"probe":"own"}')
        assert not own.is_failure
        msg = _live(gateway_client)
        assert msg is not None and msg.topic == f"congso/{SITE}/node/node-a/attendance"

        for topic in (
            f"congso/{SITE}/node/node-b/attendance",  # speaking for another node
            f"congso/{SITE}/state/roster",  # forging the gateway's state
            f"congso/{SITE}/ack/node-b",  # forging acks
            f"congso/{SITE}/cmd/node-b",  # commanding another node
        ):
            assert node.publish(topic, b'{"probe":"forged"}').value == NOT_AUTHORIZED, topic
        assert _live(gateway_client, timeout=1.0) is None
    finally:
        node.close()


def _live(client, timeout: float = 5.0):
    """The next message that is not a retained one (earlier tests leave retained state on the shared broker)."""
    while True:
        msg = client.get(timeout=timeout)
        if msg is None or not msg.retain:
            return msg


def test_node_reads_state_its_acks_and_commands_only(broker, gateway_client):
    node = RawClient(broker.port, "node-a", broker.credentials["node-a"])
    try:
        node.subscribe(f"congso/{SITE}/#")
        gateway_client.publish(f"congso/{SITE}/cmd/node-b", b'{"for":"b"}')
        gateway_client.publish(f"congso/{SITE}/ack/node-b", b'{"for":"b"}')
        gateway_client.publish(f"congso/{SITE}/cmd/node-a", b'{"for":"a"}')
        gateway_client.publish(f"congso/{SITE}/ack/node-a", b'{"for":"a"}')
        gateway_client.publish(f"congso/{SITE}/state/announcements", b'{"for":"all"}')
        got = []
        while (msg := node.get(timeout=1.5)) is not None:
            got.append(msg.topic)
        assert sorted(got) == sorted(
            [f"congso/{SITE}/cmd/node-a", f"congso/{SITE}/ack/node-a", f"congso/{SITE}/state/announcements"]
        )
    finally:
        node.close()


# -- issue 14.2: a client id is its user name --------------------------------------
def session_client(port: int, username: str, password: str, client_id: str, subscribe: str | None = None):
    """A persistent MQTT 5 session (clean_start False, a day's expiry), as congso's nodes keep."""
    got: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
    connack = threading.Event()
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(username, password)
    c.on_message = lambda client, userdata, msg: got.put(msg)
    c.on_connect = lambda client, userdata, flags, rc, props: connack.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 86400
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    assert connack.wait(10)
    if subscribe:
        done = threading.Event()
        c.on_subscribe = lambda *a: done.set()
        c.subscribe(subscribe, 1)
        assert done.wait(10)
    return c, got


def close(c) -> None:
    c.disconnect()
    c.loop_stop()


def test_a_node_password_cannot_take_the_gateways_session(private_broker, spawn, tmp_path):
    gw = start_gateway(spawn, private_broker, tmp_path / "gateway")
    log = private_broker.process.log_path
    # door-1's own password, asking for the gateway's client id
    attacker, _ = session_client(private_broker.port, "door-1", private_broker.credentials["door-1"], "gateway")
    try:
        # Mosquitto writes both lines before the CONNACK we already have.
        text = log.read_text(errors="replace")
        assert "Client gateway already connected, closing old connection" not in text, text[-2000:]
        assert "u'door-1'" in text
    finally:
        close(attacker)
    # The real gateway was never thrown off: it still stores and acks.
    node = spawn(["simulate", "node", "--count", "3", "--rate", "0", "--exit-when-drained"],
                 private_broker.env("node-a", tmp_path / "node-a"), name="node-a")
    assert node.wait(60) == 0, node.tail()
    assert "disconnected from broker" not in gw.tail(20000)


def test_a_node_password_cannot_receive_commands_queued_for_another_node(private_broker):
    creds = private_broker.credentials
    # node-b has a session with its command subscription, and goes offline
    node_b, _ = session_client(private_broker.port, "node-b", creds["node-b"], "node-b", subscribe=topics.cmd(SITE, "node-b"))
    close(node_b)
    tech = RawClient(private_broker.port, "technician", creds["technician"])
    try:
        assert not tech.publish(topics.cmd(SITE, "node-b"), b'{"v":1,"cmd_id":"c-secret","cmd":"export_finger","args":{"slot":1}}').is_failure
    finally:
        tech.close()
    # door-1's password, node-b's client id, resuming "its" session
    attacker, stolen = session_client(private_broker.port, "door-1", creds["door-1"], "node-b")
    try:
        # The command is still node-b's: it gets it when it comes back...
        node_b, got = session_client(private_broker.port, "node-b", creds["node-b"], "node-b")
        try:
            try:
                msg = got.get(timeout=10)
            except queue.Empty:
                raise AssertionError("node-b's queued command is gone (taken by door-1's password?)") from None
            assert b"c-secret" in msg.payload
        finally:
            close(node_b)
        # ...and the broker had it to give, so door-1 never saw it.
        assert stolen.empty()
    finally:
        close(attacker)


# -- issue 14.3: what one client can make the broker store -------------------------
MB = 1024 * 1024


def retained_under(broker, topic_filter: str) -> list:
    """The retained messages under ``topic_filter`` now, as a fresh subscriber gets them."""
    c = RawClient(broker.port, "technician", broker.credentials["technician"])
    marker = f"congso/{SITE}/probe/{uuid.uuid4().hex}"
    try:
        c.subscribe(topic_filter)
        c.subscribe(marker)
        c.publish(marker, b"end")  # delivered after the retained ones, in order
        found = []
        while (msg := c.get(timeout=10)) is not None and msg.topic != marker:
            found.append(msg)
        assert msg is not None, "the marker never came back"
        return [m for m in found if m.retain]
    finally:
        c.close()


def test_retained_floods_under_a_nodes_own_topics_are_refused_or_swept(private_broker, spawn, tmp_path):
    gw = start_gateway(spawn, private_broker, tmp_path / "gateway")
    node = RawClient(private_broker.port, "door-1", private_broker.credentials["door-1"])
    refused = 0
    try:
        leaves = [*topics.NODE_LEAVES, "x"]
        for i in range(100):
            leaf = leaves[i % len(leaves)]
            topic = f"congso/{SITE}/node/door-1/{leaf}" + (f"{i}" if leaf == "x" else "")
            rc = node.publish(topic, bytes([65 + i % 26]) * MB, retain=True)
            refused += rc.value == NOT_AUTHORIZED
    finally:
        node.close()
    assert refused == len([i for i in range(100) if i % len(leaves) == len(leaves) - 1])  # the made-up topics
    # The gateway clears what the ACL had to let through (status is kept only when small).
    wait_for(lambda: retained_under(private_broker, f"congso/{SITE}/node/door-1/#") == [], 30, "retained swept", gw)
    assert gw.alive()
    private_broker.stop()  # saves mosquitto.db
    db = private_broker.dir / "conf" / "data" / "mosquitto.db"
    # Not the hundred megabytes: at most the few messages still on their way
    # to the (connected, busy) gateway when the broker stopped.
    assert db.stat().st_size < 20 * MB, db.stat().st_size
    private_broker.start()
    assert retained_under(private_broker, f"congso/{SITE}/node/door-1/#") == []


def test_an_absent_gateways_queue_is_capped(private_broker, spawn, tmp_path):
    gw = start_gateway(spawn, private_broker, tmp_path / "gateway")
    assert gw.terminate() == 0  # its session (and subscription) stays, queueing for it
    node = RawClient(private_broker.port, "door-1", private_broker.credentials["door-1"])
    try:
        for i in range(100):
            node.publish(f"congso/{SITE}/node/door-1/reply", b"r" * MB)
    finally:
        node.close()
    private_broker.stop()
    db = private_broker.dir / "conf" / "data" / "mosquitto.db"
    assert db.stat().st_size < broker_mod.MAX_QUEUED_BYTES + 8 * MB, db.stat().st_size
