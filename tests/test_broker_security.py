"""Broker security from the generated config: no node speaks for another."""

from __future__ import annotations

import json
import os
import stat

import pytest

from congso.ops import broker as broker_mod
from mqtt_helpers import RawClient

from conftest import SITE, fresh_broker

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
    acl = (conf_dir / "acl").read_text()
    assert f"user node-a\ntopic write congso/{SITE}/node/node-a/#\ntopic read congso/{SITE}/state/#\n" in acl
    assert f"topic read congso/{SITE}/ack/node-a\ntopic read congso/{SITE}/cmd/node-a\n" in acl
    creds = json.loads((conf_dir / "credentials.json").read_text())
    assert set(creds) == {"gateway", "node-a", "node-b", "node-c", "node-d", "door-1", "kiosk-1", "tv-1"}
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
