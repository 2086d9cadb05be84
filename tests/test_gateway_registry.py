"""What the registry knows of each node, and what a node may say (issues 13.5, 14.5, 14.10).

Real broker, a real `congso gateway run`, real node processes and node
runtimes, each with its own credentials.
"""

from __future__ import annotations

import json
import random
import signal

import pytest
from datetime import timedelta

from congso.gateway import registry
from congso.gateway.db import open_readonly
from congso.protocol import clock
from congso.protocol.node import NodeRuntime
from congso.tools.simulate import make_fields

from conftest import query, run_congso, start_gateway, wait_for
from gateway_helpers import nodes_json


def test_each_node_is_judged_by_its_own_heartbeat(spawn, private_broker, tmp_path):
    broker = private_broker
    gw_dir = tmp_path / "gateway"
    db = gw_dir / "gateway.sqlite"
    # The gateway beats every 30 s, a door every second, a TV every 20 s.
    gw = start_gateway(spawn, broker, gw_dir, CONGSO_HEALTH_INTERVAL_S=30)
    gw_env = broker.env("gateway", gw_dir, CONGSO_HEALTH_INTERVAL_S=30)
    fast = spawn(["simulate", "node", "--count", "0"],
                 broker.env("node-a", tmp_path / "node-a", CONGSO_MQTT_KEEPALIVE_S=300), name="fast")
    slow_env = broker.env("node-b", tmp_path / "node-b", CONGSO_HEALTH_INTERVAL_S=20)
    slow = spawn(["simulate", "node", "--count", "0"], slow_env, name="slow")
    wait_for(lambda: query(db, "SELECT count(*) FROM nodes WHERE interval_s IS NOT NULL AND node_id IN ('node-a','node-b')") == [(2,)],
             20, "both nodes' health", gw)
    rows = nodes_json(gw_env)
    assert rows["node-a"]["interval_s"] == 1 and rows["node-b"]["interval_s"] == 20
    assert rows["node-a"]["liveness"] == rows["node-b"]["liveness"] == "online"

    # The door's program freezes; its connection stays up (keep-alive 300 s),
    # so only the missing heartbeats tell. 3 of its own (1 s) + 5 s, not 90 s.
    fast.proc.send_signal(signal.SIGSTOP)
    try:
        ro = open_readonly(db)

        def view(node):
            return {v.node_id: v for v in registry.list_nodes(ro, clock.now())}[node]

        wait_for(lambda: view("node-a").liveness == "silent", 20, "the frozen door silent", gw)
        wait_for(lambda: "ALERT node node-a: silent for" in gw.tail(100_000), 40, "silent alert", gw)
        rows = nodes_json(gw_env)
        assert rows["node-a"]["online"] is False and rows["node-a"]["liveness"] == "silent"
        # The TV, 8 s after its last health, is still online: it beats every 20 s.
        wait_for(lambda: view("node-b").last_seen_s > 9, 20, "the TV quiet for 9 s")
        rows = nodes_json(gw_env)
        assert rows["node-b"]["liveness"] == "online" and not rows["node-b"]["alert"]
        ro.conn.close()
    finally:
        fast.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: "RECOVERED node node-a" in gw.tail(100_000), 40, "recovered", gw)
    # The TV's own `congso status` uses the same rule with the interval it wrote.
    own = run_congso("status", **slow_env)
    assert own.returncode == 0 and "running   yes" in own.stdout, own.stdout + own.stderr
    status = json.loads((tmp_path / "node-b" / "status.json").read_text())
    assert status["interval_s"] == 20
    slow.terminate()


@pytest.mark.parametrize("scans", [True, False], ids=["scanning", "idle"])
def test_two_devices_with_one_id_raise_an_alert(spawn, private_broker, tmp_path, scans):
    broker = private_broker
    gw_dir = tmp_path / "gateway"
    gw = start_gateway(spawn, broker, gw_dir)
    # A cloned SD card: two Pis, both door-1, each with its own outbox. Busy,
    # their seq numbers collide; idle, only their sessions and uptimes tell.
    first = spawn(["simulate", "node", "--rate", "5", "--seed", "1", *([] if scans else ["--count", "0"])],
                  broker.env("door-1", tmp_path / "first"), name="first")
    # The second Pi boots a little later (two Pis never share an uptime).
    wait_for(lambda: query(gw_dir / "gateway.sqlite", "SELECT json_extract(last_health, '$.uptime_s') > 3 "
                                                      "FROM nodes WHERE node_id='door-1'") == [(1,)], 20, "first up", first)
    spawn(["simulate", "node", "--rate", "5", "--seed", "2", *([] if scans else ["--count", "0"])],
          broker.env("door-1", tmp_path / "second"), name="second")
    wait_for(lambda: "ALERT node door-1: two devices use the id door-1" in gw.tail(200_000), 60, "duplicate alert", gw)
    assert "two devices use the id door-1:" in gw.tail(200_000)  # with the evidence, in the log
    rows = nodes_json(broker.env("gateway", gw_dir))
    assert "two devices use the id door-1" in rows["door-1"]["alert"]


def test_events_only_from_the_right_kind_of_node_and_odd_times_flagged(spawn, private_broker, tmp_path):
    broker = private_broker
    gw_dir = tmp_path / "gateway"
    db = gw_dir / "gateway.sqlite"
    gw = start_gateway(spawn, broker, gw_dir)
    runtimes = {node: NodeRuntime(broker.settings(node, tmp_path / node), kind=kind)
                for node, kind in (("tv-1", "signage"), ("kiosk-1", "rating"), ("door-1", "attendance"))}
    for rt in runtimes.values():
        rt.start()
    try:
        wait_for(lambda: query(db, "SELECT count(*) FROM nodes WHERE node_id IN ('tv-1','kiosk-1','door-1') AND kind IS NOT NULL") == [(3,)],
                 15, "three nodes registered", gw)
        rng = random.Random(1)
        card = {"method": "card", "credential": "04A1B2C3D4E5F6", "staff_id": "NV001", "match_score": None}
        # Devices in the public hall forge check-ins; the door forges votes.
        runtimes["tv-1"].record("attendance", card)
        runtimes["kiosk-1"].record("attendance", card)
        runtimes["door-1"].record("rating", make_fields("rating", rng))
        # The door's clock is a day and a half ahead, then 40 days behind.
        now = clock.now()
        ahead = runtimes["door-1"].outbox.add("attendance", card, ts=(now + timedelta(hours=36)).isoformat(), clock_synced=True)
        behind = runtimes["door-1"].outbox.add("attendance", card, ts=(now - timedelta(days=40)).isoformat(), clock_synced=True)
        good = runtimes["door-1"].record("attendance", card)
        runtimes["door-1"]._wake.set()
        wait_for(lambda: query(db, "SELECT count(*) FROM attendance_events") == [(3,)], 15, "the door's check-ins", gw)
        wait_for(lambda: query(db, "SELECT count(*) FROM nodes WHERE node_id IN ('tv-1','kiosk-1','door-1') AND rejected >= 1") == [(3,)],
                 15, "three forgeries rejected", gw)
        assert query(db, "SELECT count(*) FROM rating_events") == [(0,)]
        assert query(db, "SELECT node_id FROM attendance_events") == [("door-1",)] * 3
        reasons = dict(query(db, "SELECT sender, reason FROM rejections ORDER BY id"))
        assert "tv-1 is a signage node: attendance events come only from attendance nodes" in reasons["tv-1"]
        assert "kiosk-1 is a rating node" in reasons["kiosk-1"]
        assert "door-1 is a attendance node: rating events come only from rating nodes" in reasons["door-1"]
        flags = dict(query(db, "SELECT event_id, time_flag FROM attendance_events"))
        assert flags == {ahead["event_id"]: "ahead", behind["event_id"]: "behind", good["event_id"]: None}
        # The timesheet shows it, never silently.
        day = (now + timedelta(hours=36)).date().isoformat()
        report = run_congso("report", "attendance", "--day", day, "--csv", "-", **broker.env("gateway", gw_dir))
        assert report.returncode == 0, report.stderr
        assert "time_suspect" in report.stdout
        # The forged events stay in the devices' outboxes (never acked), counted.
        assert runtimes["tv-1"].outbox.depth() == 1 and runtimes["kiosk-1"].outbox.depth() == 1

        # The TV's program replaced by one that says it is a door: its status is refused.
        runtimes["tv-1"].stop()
        liar = runtimes["tv-1"] = NodeRuntime(broker.settings("tv-1", tmp_path / "tv-1-liar"), kind="attendance")
        liar.start()
        liar.record("attendance", card)
        wait_for(lambda: any("tv-1 is registered as a signage node" in r
                             for (r,) in query(db, "SELECT reason FROM rejections WHERE sender='tv-1'")), 15, "status refused", gw)
        assert query(db, "SELECT kind FROM nodes WHERE node_id='tv-1'") == [("signage",)]
        assert query(db, "SELECT count(*) FROM attendance_events") == [(3,)]
        # A device really given another role: the technician says so, then it registers afresh.
        forget = run_congso("gateway", "forget-node", "tv-1", **broker.env("gateway", gw_dir))
        assert forget.returncode == 0, forget.stderr
        liar.stop()
        door = runtimes["tv-1"] = NodeRuntime(broker.settings("tv-1", tmp_path / "tv-1-liar"), kind="attendance")
        door.start()
        wait_for(lambda: query(db, "SELECT count(*) FROM attendance_events WHERE node_id='tv-1'") == [(1,)], 20,
                 "the re-registered door's check-in", gw)
    finally:
        for rt in runtimes.values():
            rt.stop()
