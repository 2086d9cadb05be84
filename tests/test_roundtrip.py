"""The contract round trip through a real broker and a real gateway process."""

from __future__ import annotations

import csv
import io
import json
import threading

import pytest

from congso.protocol import messages, topics
from congso.protocol.node import NodeRuntime
from gateway_helpers import logged_sum
from mqtt_helpers import RawClient

from conftest import SITE, fresh_broker, load_json_lines, query, start_gateway, wait_for
from test_protocol import attendance_event, rating_event



# Exact counts: a broker of this module's own (see conftest.fresh_broker).
broker = pytest.fixture(scope="module")(fresh_broker)

@pytest.fixture
def gateway(spawn, broker, tmp_path):
    data = tmp_path / "gateway"
    proc = start_gateway(spawn, broker, data)
    proc.db = data / "gateway.sqlite"
    proc.data_dir = data
    yield proc
    assert proc.terminate() == 0, proc.tail()


@pytest.fixture
def node_factory(broker, tmp_path):
    made: list[NodeRuntime] = []

    def make(node_id: str, kind: str = "attendance", **kw) -> NodeRuntime:
        rt = NodeRuntime(broker.settings(node_id, tmp_path / node_id), kind=kind, devices=lambda: {"reader": "ok"}, **kw)
        rt.start()
        assert rt.link.wait_connected(10), rt.link.last_error
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.stop()


def test_events_are_stored_and_acked(gateway, node_factory):
    door = node_factory("node-a", "attendance")
    kiosk = node_factory("kiosk-1", "rating")
    a = door.record("attendance", {"method": "card", "credential": "04A1B2C3D4E5F6", "staff_id": "NV001", "match_score": None})
    f = door.record("attendance", {"method": "finger", "credential": "12", "staff_id": "NV002", "match_score": 187})
    r = kiosk.record("rating", {"desk_id": "mot-cua-1", "level": "dissatisfied", "reasons": ["thoi_gian"], "officer_id": "NV002", "session_id": None, "dossier_code": None})
    wait_for(lambda: door.outbox.depth() == 0 and kiosk.outbox.depth() == 0, 10, "acks")
    rows = query(gateway.db, "SELECT event_id, node_id, seq, method, credential, staff_id, match_score, clock_synced FROM attendance_events ORDER BY seq")
    assert rows == [
        (a["event_id"], "node-a", 1, "card", "04A1B2C3D4E5F6", "NV001", None, 1),
        (f["event_id"], "node-a", 2, "finger", "12", "NV002", 187, 1),
    ]
    (rating,) = query(gateway.db, "SELECT event_id, desk_id, level, reasons, officer_id FROM rating_events")
    assert rating == (r["event_id"], "mot-cua-1", "dissatisfied", '["thoi_gian"]', "NV002")
    assert door.acked == 2 and kiosk.acked == 1


def test_status_and_health_fill_the_registry(gateway, node_factory):
    node_factory("node-b", "attendance")
    wait_for(lambda: query(gateway.db, "SELECT devices FROM nodes WHERE node_id='node-b'") == [('{"reader": "ok"}',)], 10, "health")
    (row,) = query(gateway.db, "SELECT kind, state, version, outbox, clock_synced FROM nodes WHERE node_id='node-b'")
    assert row == ("attendance", "online", "0.1.0", 0, 1)
    health = json.loads(query(gateway.db, "SELECT last_health FROM nodes WHERE node_id='node-b'")[0][0])
    assert health["node_id"] == "node-b" and health["uptime_s"] >= 0 and "ts" in health


def test_clean_stop_and_crash_both_mark_the_node_offline(gateway, node_factory, broker, spawn, tmp_path):
    # Attendance nodes: later tests send attendance events as node-c and node-d,
    # which the gateway takes only from a node it knows as an attendance node.
    rt = node_factory("node-c", "attendance")
    wait_for(lambda: query(gateway.db, "SELECT state FROM nodes WHERE node_id='node-c'") == [("online",)], 10, "online")
    rt.stop()
    wait_for(lambda: query(gateway.db, "SELECT state FROM nodes WHERE node_id='node-c'") == [("offline",)], 10, "offline on stop")
    # A crash: the broker publishes the last will.
    sim = spawn(["simulate", "node", "--kind", "attendance", "--count", "0"], broker.env("node-d", tmp_path / "node-d", CONGSO_MQTT_KEEPALIVE_S=2))
    wait_for(lambda: query(gateway.db, "SELECT state FROM nodes WHERE node_id='node-d'") == [("online",)], 15, "online", sim)
    sim.kill()
    wait_for(lambda: query(gateway.db, "SELECT state FROM nodes WHERE node_id='node-d'") == [("offline",)], 15, "last will")


def test_commands_get_replies_and_unknown_ones_an_error(gateway, node_factory, broker):
    rt = node_factory("tv-1", "signage")
    rt.commands["identify"] = lambda args: {"blinked": True}
    rt.commands["boom"] = lambda args: 1 / 0
    client = RawClient(broker.port, "technician", broker.credentials["technician"], client_id="test-cli")
    try:
        client.subscribe(topics.reply(SITE, "tv-1"))
        replies = {}
        for cmd_id, body in (
            ("c1", {"v": 1, "cmd_id": "c1", "cmd": "identify", "args": {}}),
            ("c2", {"v": 1, "cmd_id": "c2", "cmd": "self_destruct", "args": {}}),
            ("c3", {"v": 1, "cmd_id": "c3", "cmd": "boom"}),
            ("c4", {"v": 1, "cmd_id": "c4", "cmd": 42}),
        ):
            client.publish(topics.cmd(SITE, "tv-1"), json.dumps(body))
            msg = client.get(10)
            assert msg is not None, cmd_id
            replies[cmd_id] = messages.decode("reply", msg.payload)
        assert replies["c1"] == {"v": 1, "cmd_id": "c1", "ok": True, "result": {"blinked": True}, "error": None}
        assert replies["c2"]["ok"] is False and "unknown command 'self_destruct'" in replies["c2"]["error"]
        assert replies["c3"]["ok"] is False and "division by zero" in replies["c3"]["error"]
        assert replies["c4"]["ok"] is False and "cmd.cmd: must be a string" in replies["c4"]["error"]
        # The gateway did not send these commands (a tool did): it keeps none
        # of their replies (it stores only answers to its own, unsettled ones).
        wait_for(lambda: logged_sum(gateway.tail(100_000), r"ignored (\d+) replies") >= 4, 10, "replies seen", gateway)
        assert query(gateway.db, "SELECT cmd_id FROM command_replies WHERE node_id='tv-1'") == []
        # and the node is still alive and well
        assert rt.link.connected.is_set()
    finally:
        client.close()


def test_retained_state_reaches_nodes_and_bad_state_is_rejected(broker, node_factory):
    seen: list[tuple[str, dict | None]] = []
    got = threading.Event()

    def on_state(where, payload):
        seen.append((where.leaf, payload))
        got.set()

    gw = RawClient(broker.port, "technician", broker.credentials["technician"], client_id="test-state")
    try:
        roster = {"v": 1, "version": 5, "staff": [{"staff_id": "NV001", "name": "Nguyễn Thị Thu Hà", "department": "Văn phòng", "cards": ["04A1B2C3D4E5F6"], "fingers": {"door-1": [1, 2]}}]}
        gw.publish(topics.state(SITE, "roster"), messages.encode("roster", roster), retain=True)
        gw.publish(topics.state(SITE, "dossiers"), b'{"v":1,"version":"x"}', retain=True)
        rt = node_factory("door-1", "attendance", on_state=on_state)
        wait_for(lambda: any(leaf == "roster" for leaf, _ in seen), 10, "retained roster")
        assert dict(seen)["roster"]["staff"][0]["name"] == "Nguyễn Thị Thu Hà"
        assert "dossiers" not in dict(seen)  # invalid: rejected, counted
        wait_for(lambda: rt.rejects.total() >= 1, 5, "rejection counted")
        # a desk session is cleared by an empty retained payload
        desk = {"v": 1, "session_id": "s1", "desk_id": "mot-cua-1", "officer_id": "NV001", "officer_name": "Nguyễn Thị Thu Hà", "dossier_code": None, "opened_at": "2026-11-23T08:00:00+07:00", "expires_at": "2026-11-23T08:15:00+07:00"}
        gw.publish(topics.desk(SITE, "mot-cua-1"), messages.encode("desk", desk), retain=True)
        gw.publish(topics.desk(SITE, "mot-cua-1"), b"", retain=True)
        wait_for(lambda: ("mot-cua-1", None) in seen, 10, "desk cleared")
    finally:
        for name in ("roster", "dossiers"):
            gw.publish(topics.state(SITE, name), b"", retain=True)
        gw.close()


def test_duplicates_are_stored_once_and_acked_every_time(gateway, broker):
    node = RawClient(broker.port, "node-c", broker.credentials["node-c"], client_id="node-c")
    try:
        node.subscribe(topics.ack(SITE, "node-c"))
        event = attendance_event(node_id="node-c", seq=1)
        payload = messages.encode("attendance", event)
        for _ in range(3):
            node.publish(topics.attendance(SITE, "node-c"), payload)
            ack = node.get(10)
            assert ack is not None and messages.decode("ack", ack.payload)["event_ids"] == [event["event_id"]]
        # the same event with its id in capitals is still the same event
        shouted = {**event, "event_id": event["event_id"].upper()}
        node.publish(topics.attendance(SITE, "node-c"), messages.encode("attendance", shouted))
        ack = node.get(10)
        assert ack is not None and messages.decode("ack", ack.payload)["event_ids"] == [shouted["event_id"]]
        assert query(gateway.db, "SELECT count(*) FROM attendance_events WHERE node_id='node-c'") == [(1,)]
    finally:
        node.close()


def test_bad_payloads_are_rejected_counted_and_ingest_goes_on(gateway, broker):
    node = RawClient(broker.port, "node-d", broker.credentials["node-d"], client_id="node-d")
    try:
        node.subscribe(topics.ack(SITE, "node-d"))
        t = topics.attendance(SITE, "node-d")
        bad = [
            (t, b"not json at all"),
            (t, b"\xff\xfe\x00garbage"),
            (t, json.dumps(attendance_event(node_id="node-d", seq="1"))),  # wrong type
            (t, json.dumps({k: v for k, v in attendance_event(node_id="node-d").items() if k != "credential"})),  # missing
            (t, json.dumps(attendance_event(node_id="node-d", credential="X" * 70_000))),  # oversized
            (t, json.dumps(attendance_event(node_id="node-a"))),  # speaks for another node
            (topics.rating(SITE, "node-d"), json.dumps(rating_event(node_id="node-d", level="meh"))),
            (topics.health(SITE, "node-d"), b"[]"),
        ]
        for topic, payload in bad:
            node.publish(topic, payload)
        good = attendance_event(node_id="node-d", seq=2)
        node.publish(t, messages.encode("attendance", good))
        ack = node.get(10)
        assert ack is not None and messages.decode("ack", ack.payload)["event_ids"] == [good["event_id"]]
        wait_for(lambda: query(gateway.db, "SELECT rejected FROM nodes WHERE node_id='node-d'") == [(len(bad),)], 10, "rejections counted", gateway)
        reasons = [r for (r,) in query(gateway.db, "SELECT reason FROM rejections WHERE sender='node-d' ORDER BY id")]
        assert any("not valid JSON" in r for r in reasons)
        assert any("attendance.seq: must be an integer, got string" in r for r in reasons)
        assert any("attendance.credential: is required" in r for r in reasons)
        assert any("over the limit" in r for r in reasons)
        assert any("does not match the topic's node" in r for r in reasons)
        assert any("rating.level" in r for r in reasons)
        assert query(gateway.db, "SELECT count(*) FROM attendance_events WHERE node_id='node-d'") == [(1,)]
        # logged once per minute per sender, not once per message
        assert gateway.tail().count("rejected message from node-d") == 1
        assert gateway.alive()
    finally:
        node.close()


def test_events_export_jsonl_and_csv(gateway, node_factory, spawn, broker):
    door = node_factory("node-b", "attendance")
    kiosk = node_factory("kiosk-1", "rating")
    ids = [door.record("attendance", {"method": "card", "credential": f"04{i:012X}", "staff_id": None, "match_score": None})["event_id"] for i in range(3)]
    ids.append(kiosk.record("rating", {"desk_id": "mot-cua-1", "level": "very_satisfied", "reasons": []})["event_id"])
    wait_for(lambda: door.outbox.depth() == 0 and kiosk.outbox.depth() == 0, 10, "acks")
    env = broker.env("gateway", gateway.data_dir)
    out = spawn(["events", "export", "--format", "jsonl"], env, name="export")
    assert out.wait(20) == 0
    rows = load_json_lines(out.stdout())
    assert sorted(r["event_id"] for r in rows) == sorted(ids)
    assert {r["kind"] for r in rows} == {"attendance", "rating"}
    today = rows[0]["ts"][:10]
    out = spawn(["events", "export", "--kind", "attendance", "--format", "csv", "--from", today, "--to", today], env, name="export")
    assert out.wait(20) == 0
    table = list(csv.DictReader(io.StringIO(out.stdout())))
    assert [r["event_id"] for r in table] == ids[:3]
    assert table[0]["method"] == "card" and table[0]["clock_synced"] == "true"
    bad = spawn(["events", "export", "--format", "csv", "--from", "23/11/2026"], env, name="export")
    assert bad.wait(20) != 0
    assert "--from must be a date like 2026-11-23" in bad.tail()
