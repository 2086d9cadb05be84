"""Exactly once across crashes: gateway, broker and node processes killed for real.

Each test runs its own broker, a gateway process and simulated node
processes that make events flat out and exit once the gateway has acked
every one of them. The checks are the contract's promise: every event that
a node committed (and so gave feedback for) is stored once, none twice, and
every outbox empties.
"""

from __future__ import annotations

import json
import time

import pytest

from conftest import SITE, query, start_gateway, wait_for
from mqtt_helpers import RawClient

pytestmark = pytest.mark.slow

NODES = ["node-a", "node-b", "node-c", "node-d"]
PER_NODE = 2500  # 4 x 2,500 = a 10,000-event burst


def start_burst(spawn, broker, tmp_path, count=PER_NODE):
    return {
        node: spawn(
            ["simulate", "node", "--kind", "attendance" if i % 2 == 0 else "rating", "--count", str(count), "--rate", "0", "--exit-when-drained", "--seed", str(i)],
            broker.env(node, tmp_path / node),
            name=node,
        )
        for i, node in enumerate(NODES)
    }


def stored(db) -> int:
    return query(db, "SELECT (SELECT count(*) FROM attendance_events) + (SELECT count(*) FROM rating_events)")[0][0]


def assert_exactly_once(db, nodes, count=PER_NODE):
    for node in nodes:
        table = "attendance_events" if NODES.index(node) % 2 == 0 else "rating_events"
        (n, distinct, lo, hi) = query(db, f"SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM {table} WHERE node_id=?", (node,))[0]
        assert (n, distinct, lo, hi) == (count, count, 1, count), node


def wait_drained(sims, timeout=180):
    for node, sim in sims.items():
        assert sim.wait(timeout) == 0, sim.tail()


def outbox_depth(tmp_path, node) -> int:
    return query(tmp_path / node / "outbox.sqlite", "SELECT count(*) FROM outbox")[0][0]


def test_gateway_sigkilled_mid_burst(private_broker, spawn, tmp_path):
    data = tmp_path / "gateway"
    gw = start_gateway(spawn, private_broker, data)
    db = data / "gateway.sqlite"
    sims = start_burst(spawn, private_broker, tmp_path)
    wait_for(lambda: stored(db) >= 2000, 60, "the burst under way", gw)
    gw.kill()
    killed_at = stored(db)
    assert killed_at < len(NODES) * PER_NODE, "the burst ended before the kill: make it bigger"
    time.sleep(1)
    gw = start_gateway(spawn, private_broker, data)
    wait_drained(sims)
    assert stored(db) == len(NODES) * PER_NODE
    assert_exactly_once(db, NODES)
    assert all(outbox_depth(tmp_path, n) == 0 for n in NODES)
    assert gw.terminate() == 0


def test_broker_killed_and_restarted_mid_burst(private_broker, spawn, tmp_path):
    data = tmp_path / "gateway"
    gw = start_gateway(spawn, private_broker, data)
    db = data / "gateway.sqlite"
    sims = start_burst(spawn, private_broker, tmp_path)
    wait_for(lambda: stored(db) >= 2000, 60, "the burst under way", gw)
    private_broker.kill()
    assert stored(db) < len(NODES) * PER_NODE
    time.sleep(2)
    private_broker.start()
    wait_drained(sims)
    assert stored(db) == len(NODES) * PER_NODE
    assert_exactly_once(db, NODES)
    assert gw.alive()
    assert gw.terminate() == 0


def test_gateway_sigterm_finishes_cleanly(private_broker, spawn, tmp_path):
    data = tmp_path / "gateway"
    gw = start_gateway(spawn, private_broker, data)
    db = data / "gateway.sqlite"
    sims = start_burst(spawn, private_broker, tmp_path, count=1000)
    wait_for(lambda: stored(db) >= 500, 60, "the burst under way", gw)
    assert gw.terminate(timeout=15) == 0  # finishes the batch, commits, acks, exits 0
    assert "gateway stopped" in gw.tail()
    # the retained status says so, for every node and `congso nodes`
    watcher = RawClient(private_broker.port, "technician", private_broker.credentials["technician"], client_id="watcher")
    try:
        watcher.subscribe(f"congso/{SITE}/node/gateway/status")
        msg = watcher.get(5)
    finally:
        watcher.close()
    assert msg is not None and json.loads(msg.payload)["state"] == "offline"
    gw = start_gateway(spawn, private_broker, data)
    wait_drained(sims)
    assert_exactly_once(db, NODES, count=1000)
    assert gw.terminate() == 0


def test_node_killed_right_after_commit_delivers_after_restart(private_broker, spawn, tmp_path):
    """The node beeped (committed) while the broker was away, then lost power."""
    data = tmp_path / "gateway"
    gw = start_gateway(spawn, private_broker, data)
    db = data / "gateway.sqlite"
    private_broker.stop()
    node = spawn(["simulate", "node", "--count", "3", "--rate", "0"], private_broker.env("node-a", tmp_path / "node-a"), name="node-a")
    committed = [node.readline_until("committed").split()[2] for _ in range(3)]
    node.kill()  # power cut right after the feedback
    private_broker.start()
    again = spawn(["simulate", "node", "--count", "0", "--exit-when-drained"], private_broker.env("node-a", tmp_path / "node-a"), name="node-a")
    assert again.wait(60) == 0, again.tail()
    for event_id in committed:
        assert query(db, "SELECT count(*) FROM attendance_events WHERE event_id=?", (event_id,)) == [(1,)]
    assert outbox_depth(tmp_path, "node-a") == 0
    assert gw.terminate() == 0


def test_node_killed_while_publishing_never_double_counts(private_broker, spawn, tmp_path):
    data = tmp_path / "gateway"
    gw = start_gateway(spawn, private_broker, data)
    db = data / "gateway.sqlite"
    node = spawn(["simulate", "node", "--count", "2000", "--rate", "0"], private_broker.env("node-b", tmp_path / "node-b"), name="node-b")
    node.readline_until("committed 1500 ")
    node.kill()
    again = spawn(["simulate", "node", "--count", "0", "--exit-when-drained"], private_broker.env("node-b", tmp_path / "node-b"), name="node-b")
    assert again.wait(60) == 0, again.tail()
    (n, distinct, hi) = query(db, "SELECT count(*), count(DISTINCT seq), max(seq) FROM attendance_events WHERE node_id='node-b'")[0]
    # everything committed before the kill arrives, once; seq numbers are unique
    assert n == distinct == hi and n >= 1500
    assert gw.terminate() == 0


def test_gateway_first_start_gets_events_published_before_it_subscribed(private_broker, spawn, tmp_path):
    # A broker that never saw the gateway (a new install, or a lost
    # mosquitto.db) drops what nodes publish before the gateway subscribes.
    # The gateway's retained state/gateway beacon makes the nodes re-send at
    # once: here the replay timer alone would take ten minutes.
    slow_timer = {"CONGSO_OUTBOX_REPLAY_AFTER_S": "600"}
    sims = {
        node: spawn(
            ["simulate", "node", "--kind", "attendance", "--count", "50", "--rate", "0", "--exit-when-drained", "--seed", str(i)],
            private_broker.env(node, tmp_path / node, **slow_timer),
            name=node,
        )
        for i, node in enumerate(NODES[:2])
    }
    for sim in sims.values():
        sim.readline_until("committed 50 ")
    time.sleep(1)  # published into the void: nobody is subscribed yet
    data = tmp_path / "gateway"
    gw = start_gateway(spawn, private_broker, data, **slow_timer)
    db = data / "gateway.sqlite"
    wait_for(lambda: query(db, "SELECT count(*) FROM attendance_events")[0][0] == 100, 20, "the early events to arrive", gw)
    wait_drained(sims, timeout=20)
    for node in sims:
        (n, distinct) = query(db, "SELECT count(*), count(DISTINCT seq) FROM attendance_events WHERE node_id=?", (node,))[0]
        assert (n, distinct) == (50, 50), node
    assert gw.terminate() == 0
