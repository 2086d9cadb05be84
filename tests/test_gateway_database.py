"""The gateway's database file removed or damaged, a node's outbox damaged (issue 14.1, 14.10).

Real broker, real `congso gateway run` processes, simulated node processes
and node runtimes with their own credentials, and real files removed or
overwritten under them.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time

import pytest

from congso.gateway.db import open_db
from congso.protocol import topics
from congso.protocol.node import NodeRuntime
from congso.protocol.outbox import OutboxError

from conftest import SITE, query, run_congso, start_gateway, wait_for
from gateway_helpers import damage_table, nodes_json
from mqtt_helpers import RawClient

NODES = ["node-a", "node-c"]
PER_NODE = 1500


def _acked(outbox) -> set[int]:
    """The seqs this node has had acked: every seq it made, less those still in its outbox (one snapshot)."""
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=10)
    try:
        conn.execute("BEGIN")
        made = conn.execute("SELECT value FROM counter WHERE name='seq'").fetchone()
        unacked = {r[0] for r in conn.execute("SELECT seq FROM outbox")}
        conn.execute("COMMIT")
    finally:
        conn.close()
    return set(range(1, (made[0] if made else 0) + 1)) - unacked


@pytest.mark.slow
def test_database_removed_during_a_burst_loses_no_acked_event(spawn, private_broker, tmp_path):
    broker = private_broker
    gw_dir = tmp_path / "gateway"
    db = gw_dir / "gateway.sqlite"
    gw = start_gateway(spawn, broker, gw_dir)
    sims = {node: spawn(["simulate", "node", "--count", str(PER_NODE), "--rate", "300", "--exit-when-drained", "--seed", str(i)],
                        broker.env(node, tmp_path / node), name=node)
            for i, node in enumerate(NODES)}
    wait_for(lambda: query(db, "SELECT count(*) FROM attendance_events")[0][0] >= 400, 60, "the burst under way", gw)
    watcher = RawClient(broker.port, "technician", broker.credentials["technician"])
    watcher.subscribe(topics.health(SITE, "gateway"), qos=0)

    # Hold the gateway still so we know what was acked before the file went:
    # that much is in the removed file (a backup's business, not this test's).
    gw.proc.send_signal(signal.SIGSTOP)
    try:
        stable, last = 0, None
        while stable < 5:  # the acks already on their way reach the nodes
            now = {node: _acked(tmp_path / node / "outbox.sqlite") for node in NODES}
            stable = stable + 1 if now == last else 0
            last = now
            time.sleep(0.2)
        acked_before = last
        os.unlink(db)  # a technician "cleaning up"
    finally:
        gw.proc.send_signal(signal.SIGCONT)

    # The gateway notices before it acks again, says so, and exits non-zero.
    assert gw.wait(30) == 3, gw.tail()
    log = gw.tail(200_000)
    assert f"the database file {db} was deleted while the gateway ran" in log and "NOT acking" in log
    assert "Traceback" not in log
    # ... and says so in its health, for `congso nodes` and the province.
    healths = []
    while (msg := watcher.get(1)) is not None:
        healths.append(json.loads(msg.payload))
    watcher.close()
    assert any(h["devices"] == {"database": "error"} and "was deleted" in h.get("database_error", "") for h in healths), healths[-3:]

    # systemd starts it again: on the real (new) file. The nodes deliver what they kept.
    gw2 = start_gateway(spawn, broker, gw_dir)
    for node, sim in sims.items():
        assert sim.wait(180) == 0, sim.tail()
    for node in NODES:
        stored = {r[0] for r in query(db, "SELECT seq FROM attendance_events WHERE node_id=?", (node,))}
        missing = set(range(1, PER_NODE + 1)) - acked_before[node] - stored
        assert not missing, f"{node}: {len(missing)} events acked after the file was removed are lost"
        assert query(db, "SELECT count(*) = count(DISTINCT seq) FROM attendance_events WHERE node_id=?", (node,)) == [(1,)]
    assert gw2.terminate() == 0


def test_damaged_database_and_outbox_give_advice_not_a_traceback(spawn, private_broker, tmp_path):
    broker = private_broker
    gw_dir = tmp_path / "gateway"
    db = gw_dir / "gateway.sqlite"
    env = broker.env("gateway", gw_dir)
    lib = open_db(db)
    with lib.conn:
        lib.conn.executemany("INSERT INTO staff(staff_id, name, active) VALUES (?, ?, 1)",
                             [(f"NV{i:04d}", f"Nguyễn Văn {i}") for i in range(600)])
    lib.conn.close()
    assert run_congso("gateway", "check-db", **env).returncode == 0
    damage_table(db, "staff")

    check = run_congso("gateway", "check-db", **env)
    assert check.returncode == 1
    assert "integrity check FAILED" in check.stderr
    assert "congso gateway restore FILE" in check.stderr and "move the damaged file aside" in check.stderr
    for args in (["staff", "list"], ["nodes"], ["holiday", "list"]):
        out = run_congso(*args, **env)
        assert out.returncode == 1, (args, out.stdout)
        assert "is damaged" in out.stderr and "congso gateway restore FILE" in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr, (args, out.stderr)
    run = spawn(["gateway", "run"], env, name="damaged")
    assert run.wait(30) != 0
    assert "congso gateway restore FILE" in run.tail() and "Traceback" not in run.tail()

    # A door whose outbox is damaged: every scan fails, and now it says so.
    sound_dir = tmp_path / "gateway-ok"
    gw = start_gateway(spawn, broker, sound_dir)
    door_dir = tmp_path / "node-a"
    first = NodeRuntime(broker.settings("node-a", door_dir), kind="attendance")
    for _ in range(60):  # offline: they stay in the outbox
        first.record("attendance", {"method": "card", "credential": "04A1B2C3D4E5F6", "staff_id": None, "match_score": None})
    first.outbox.close()
    damage_table(door_dir / "outbox.sqlite", "outbox")

    door = NodeRuntime(broker.settings("node-a", door_dir), kind="attendance")
    door.start()
    try:
        assert door.outbox_damage  # found by the check at start
        with pytest.raises(OutboxError):
            door.record("attendance", {"method": "card", "credential": "04A1B2C3D4E5F6", "staff_id": None, "match_score": None})
        gw_env = broker.env("gateway", sound_dir)
        wait_for(lambda: nodes_json(gw_env).get("node-a", {}).get("devices", {}).get("outbox") == "error", 20, "outbox error", gw)
        wait_for(lambda: "ALERT node node-a: device outbox error" in gw.tail(100_000), 20, "alert", gw)
        own = run_congso("status", **broker.env("node-a", door_dir))
        assert "OUTBOX DAMAGED" in own.stdout and "move the file aside" in own.stdout, own.stdout + own.stderr
        assert "Traceback" not in own.stderr
    finally:
        door.stop()
