"""Commands to nodes: deadlines (never delivered late) and replies handled once (issues 13.5, 14.3, 14.9).

Real broker, a real `congso gateway run`, nodes with their own credentials:
a node runtime, or a plain MQTT client logged in as the node for replies
that a real node would never send.
"""

from __future__ import annotations

import json
import time
import uuid

from congso.gateway import commands
from congso.gateway.db import open_db
from congso.protocol import messages, topics
from congso.protocol.node import NodeRuntime

from conftest import SITE, query, run_congso, start_gateway, wait_for
from gateway_helpers import files_mb, logged_sum, rss_mb
from mqtt_helpers import RawClient


def _door(broker, tmp_path, seen: list):
    node = NodeRuntime(broker.settings("node-a", tmp_path / "node-a"), kind="attendance")
    node.commands["identify"] = lambda args: seen.append(args.get("n")) or {"n": args.get("n")}
    return node


def test_a_command_past_its_deadline_is_never_delivered(spawn, private_broker, tmp_path):
    broker = private_broker
    gw_dir = tmp_path / "gateway"
    gw_env = broker.env("gateway", gw_dir)
    seen: list = []
    door = _door(broker, tmp_path, seen)
    door.start()
    try:
        # The gateway is down: the technician's command cannot go out. The CLI
        # says so, and the command is settled there and then: it must not
        # make the door blink when the gateway comes back.
        late = run_congso("node", "cmd", "node-a", "identify", "--args", '{"n": "late"}', "--timeout", "1", **gw_env)
        assert late.returncode == 1
        assert "expired, not delivered" in late.stderr and "is the gateway running" in late.stderr
        db = gw_dir / "gateway.sqlite"
        assert query(db, "SELECT outcome FROM outgoing_commands") == [("expired",)]
        # One queued with a short deadline while the gateway is down expires on its own.
        lib = open_db(db)
        short = commands.queue(lib, "node-a", "identify", {"n": "short"}, deadline_s=1)
        time.sleep(1.5)  # the gateway stays down past that deadline: the fault being played

        gw = start_gateway(spawn, broker, gw_dir)
        wait_for(lambda: commands.status(lib, short)["state"] == "expired", 15, "the short command expired", gw)
        fresh = run_congso("node", "cmd", "node-a", "identify", "--args", '{"n": "fresh"}', **gw_env)
        assert fresh.returncode == 0, fresh.stderr
        # Commands go out in the order queued: had either old one been sent, it came first.
        assert seen == ["fresh"]
        assert commands.status(lib, short)["sent_at"] is None

        # The node is away: a command sent meanwhile waits in the broker, but
        # only until its deadline (MQTT 5 message expiry).
        door.stop()
        away = commands.queue(lib, "node-a", "identify", {"n": "away"}, deadline_s=2)
        wait_for(lambda: commands.status(lib, away)["sent_at"] is not None, 15, "sent to the broker", gw)
        time.sleep(3)  # the door stays away past the deadline: that is the fault being played
        back = commands.queue(lib, "node-a", "identify", {"n": "back"})
        wait_for(lambda: commands.status(lib, back)["sent_at"] is not None, 15, "sent to the broker", gw)
        door = _door(broker, tmp_path, seen)
        door.start()
        wait_for(lambda: "back" in seen, 20, "the command within its deadline", gw)
        assert seen == ["fresh", "back"]
        with_expiry = commands.wait_reply(lib, back, 10)
        assert with_expiry == {"n": "back"}
        lib.conn.close()
    finally:
        door.stop()


def _export_reply(cmd_id: str) -> bytes:
    return messages.encode("reply", {"v": 1, "cmd_id": cmd_id, "ok": True,
                                     "result": {"slot": 3, "template_base64": "AAEC"}})


def test_replies_are_handled_once_and_made_up_ones_are_not_stored(spawn, private_broker, tmp_path):
    broker = private_broker
    gw_dir = tmp_path / "gateway"
    db = gw_dir / "gateway.sqlite"
    # What an earlier run left: a command settled 8 days ago with its reply,
    # and a reply to no command (0.1.0 stored those): pruned on schedule.
    lib = open_db(db)
    with lib.conn:
        lib.conn.execute("INSERT INTO outgoing_commands(cmd_id, node_id, cmd, args, queued_at, sent_at, settled_at, outcome) "
                         "VALUES ('old', 'node-a', 'identify', '{}', '2026-01-01T08:00:00+07:00', '2026-01-01T08:00:01+07:00', "
                         "'2026-01-01T08:00:02+07:00', 'answered')")
        lib.conn.execute("INSERT INTO command_replies(cmd_id, node_id, ok) VALUES ('old', 'node-a', 1), ('made-up', 'node-a', 1)")
    gw = start_gateway(spawn, broker, gw_dir)
    wait_for(lambda: query(db, "SELECT count(*) FROM command_replies") == [(0,)]
             and query(db, "SELECT count(*) FROM outgoing_commands") == [(0,)], 15, "old replies pruned", gw)

    # The door (its own credentials and client id) gets an export for a
    # finger being carried to node-b, as after an enrolment.
    door = RawClient(broker.port, "node-a", broker.credentials["node-a"], client_id="node-a")
    try:
        door.subscribe(topics.cmd(SITE, "node-a"))
        cmd_id = commands.queue(lib, "node-a", "export_finger", {"slot": 3},
                                {"staff_id": "NV001", "source_node": "node-a", "carry_to": ["node-b"]})
        msg = door.get(15)
        assert msg is not None and json.loads(msg.payload)["cmd_id"] == cmd_id
        # The reply, six times (a replay; QoS 1 redelivers the same way).
        for _ in range(6):
            door.publish(topics.reply(SITE, "node-a"), _export_reply(cmd_id))
        wait_for(lambda: logged_sum(gw.tail(100_000), r"ignored (\d+) replies") == 5, 15, "five replies ignored", gw)
        imports = query(db, "SELECT node_id, args FROM outgoing_commands WHERE cmd = 'import_finger'")
        assert len(imports) == 1 and imports[0][0] == "node-b"
        assert commands.status(lib, cmd_id)["state"] == "answered"

        # 60 replies of nearly 4 MB to commands nobody sent: nothing stored.
        size_before = files_mb(db)
        filler = "x" * (messages.MAX_REPLY_PAYLOAD - 200)
        for _ in range(60):
            fake = {"v": 1, "cmd_id": str(uuid.uuid4()), "ok": True, "result": {"junk": filler}}
            door.publish(topics.reply(SITE, "node-a"), json.dumps(fake))
        wait_for(lambda: logged_sum(gw.tail(200_000), r"ignored (\d+) replies") == 65, 120, "the made-up replies seen", gw)
        assert query(db, "SELECT count(*) FROM command_replies") == [(1,)]
        assert files_mb(db) - size_before < 5, files_mb(db)
        assert rss_mb(gw.proc.pid) < 200
        assert gw.alive()
    finally:
        door.close()
        lib.conn.close()
