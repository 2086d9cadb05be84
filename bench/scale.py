"""Scale benchmark: 1,000 nodes on one gateway, and a morning storm of check-ins.

    .venv/bin/python bench/scale.py [--nodes 1000] [--checkins 5000] [--storm-s 60] [--heartbeat-s 30] [--quick]

One real Mosquitto (a user per node, the generated ACL) and one real
``congso gateway run``. The nodes are N MQTT 5 clients driven from one
thread through paho's external event loop (1,000 threads would measure
the benchmark, not the gateway). Each node connects like a real one
(client id = node id, persistent session, retained status), subscribes to
its acks, sends health every ``--heartbeat-s`` (staggered) and, during the
storm, check-ins spread at random over ``--storm-s`` seconds. A check-in is
kept until its ack arrives and re-published after 15 s without one, as the
outbox does.

Two runs side by side at the same load: the gateway as configured
(batches of up to 500 per transaction) and with ``batch_max = 1`` (one
transaction per message), to show what batching buys.

Reported per run: check-ins stored (must equal the number sent: nothing lost,
none twice), time to ack p50/p95/p99/max, the gateway's peak and final RSS
and CPU seconds, heartbeats received.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from congso.tools import harness
from congso.protocol import clock, messages, topics

SITE = "bench"
REPLAY_S = 15.0


class SimNode:
    def __init__(self, node_id: str, password: str, port: int, on_message):
        self.node_id = node_id
        self.seq = 0
        self.pending: dict[str, tuple[float, bytes]] = {}  # event_id -> (first sent, payload)
        self.sent_at: dict[str, float] = {}
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=node_id, protocol=mqtt.MQTTv5)
        c.username_pw_set(node_id, password)
        status = messages.dumps({"v": 1, "node_id": node_id, "kind": "attendance", "state": "offline",
                                 "version": "bench", "since": clock.now_iso()})
        c.will_set(topics.status(SITE, node_id), status, qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_message = lambda cl, ud, msg: on_message(self, msg)
        self.client = c
        self.port = port
        self.connected = False

    def connect(self):
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 86400
        self.client.connect(host="127.0.0.1", port=self.port, keepalive=60, clean_start=False, properties=props)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        # As a real node: its acks, its commands and every retained state.
        client.subscribe([(topics.ack(SITE, self.node_id), 1), (topics.cmd(SITE, self.node_id), 1),
                          (topics.all_state(SITE), 1)])
        client.publish(topics.status(SITE, self.node_id), messages.dumps(
            {"v": 1, "node_id": self.node_id, "kind": "attendance", "state": "online", "version": "bench",
             "since": clock.now_iso()}), qos=1, retain=True)
        self.connected = True

    def health(self):
        payload = messages.encode("health", {"v": 1, "node_id": self.node_id, "ts": clock.now_iso(), "uptime_s": 1.0,
                                             "outbox": len(self.pending), "clock_synced": True, "devices": {"card": "ok"}})
        self.client.publish(topics.health(SITE, self.node_id), payload, qos=0)

    def checkin(self, now: float):
        self.seq += 1
        event = {"v": 1, "event_id": str(uuid.uuid4()), "node_id": self.node_id, "ts": clock.now_iso(),
                 "clock_synced": True, "seq": self.seq, "method": "card", "credential": f"04{random.randrange(16**12):012X}",
                 "staff_id": f"NV{random.randrange(1000):03d}", "match_score": None}
        payload = messages.encode("attendance", event)
        self.pending[event["event_id"]] = (now, payload)
        self.sent_at[event["event_id"]] = now
        self.client.publish(topics.attendance(SITE, self.node_id), payload, qos=1)


def rss_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def gateway_online(db_path: Path) -> bool:
    """The gateway has stored its own retained 'online' status: it is subscribed."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT 1 FROM nodes WHERE node_id='gateway' AND state='online'").fetchone() is not None
    finally:
        db.close()


def run(label: str, args, work: Path, extra_env: dict[str, str]) -> dict:
    run_dir = work / label
    run_dir.mkdir(parents=True)
    node_ids = [f"sim-{i:04d}" for i in range(args.nodes)]
    broker = harness.Broker(SITE, node_ids, log_path=run_dir / "mosquitto.log").start()
    port, creds = broker.port, broker.credentials
    env = broker.env("gateway", run_dir / "gateway", CONGSO_CLOCK_SYNCED="yes", CONGSO_LOG_LEVEL="WARNING", **extra_env)
    gw = harness.Proc(["gateway", "run"], env, run_dir / "gateway.log", stdout="log")
    harness.wait_for(lambda: gateway_online(run_dir / "gateway" / "gateway.sqlite"), 60, "the gateway online", gw)

    latencies: list[float] = []
    acked = [0]

    state_messages = [0]

    def on_message(node: SimNode, msg):
        if "/state/" in msg.topic:
            state_messages[0] += 1  # the retained state every node receives
            return
        now = time.monotonic()
        for eid in messages.decode("ack", msg.payload)["event_ids"]:
            sent = node.sent_at.pop(eid, None)
            if node.pending.pop(eid, None) is not None and sent is not None:
                latencies.append(now - sent)
                acked[0] += 1

    sel = selectors.DefaultSelector()
    nodes = [SimNode(n, creds[n], port, on_message) for n in node_ids]
    socks = {}

    def pump(timeout: float):
        for node in nodes:
            sock = node.client.socket()
            if sock is None:
                continue
            key = socks.get(node.node_id)
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if node.client.want_write() else 0)
            if key is None or key[0] is not sock:
                if key is not None:
                    try:
                        sel.unregister(key[0])
                    except (KeyError, ValueError):
                        pass
                sel.register(sock, events, node)
                socks[node.node_id] = (sock, events)
            elif key[1] != events:
                sel.modify(sock, events, node)
                socks[node.node_id] = (sock, events)
        for key, mask in sel.select(timeout):
            node = key.data
            if mask & selectors.EVENT_READ:
                node.client.loop_read()
            if mask & selectors.EVENT_WRITE:
                node.client.loop_write()

    started = time.monotonic()
    for i, node in enumerate(nodes):
        node.connect()
        if i % 50 == 49:
            pump(0.01)
    while sum(n.connected for n in nodes) < len(nodes) and time.monotonic() - started < 120:
        pump(0.05)
        for n in nodes:
            n.client.loop_misc()
    connect_s = time.monotonic() - started
    connected = sum(n.connected for n in nodes)

    # Heartbeats staggered over the interval; check-ins at random times in the storm.
    t0 = time.monotonic()
    next_health = {n.node_id: t0 + random.uniform(0, args.heartbeat_s) for n in nodes}
    storm = sorted(t0 + random.uniform(0, args.storm_s) for _ in range(args.checkins))
    heartbeats = 0
    state_messages[0] = 0  # count the storm's, not the ones at connect
    cpu0 = cpu_s(gw.pid)
    peak = 0
    last_misc = 0.0
    end = t0 + args.storm_s
    while True:
        now = time.monotonic()
        while storm and storm[0] <= now:
            storm.pop(0)
            random.choice(nodes).checkin(now)
        for n in nodes:
            if next_health[n.node_id] <= now:
                n.health()
                heartbeats += 1
                next_health[n.node_id] = now + args.heartbeat_s
        if now - last_misc > 0.5:
            for n in nodes:
                n.client.loop_misc()
                for eid, (first, payload) in list(n.pending.items()):
                    if now - first > REPLAY_S:  # as the outbox: re-publish what is unacked
                        n.pending[eid] = (now, payload)
                        n.client.publish(topics.attendance(SITE, n.node_id), payload, qos=1)
            peak = max(peak, rss_kb(gw.pid, "VmRSS:"))
            last_misc = now
        pump(0.005)
        if now > end and not storm and acked[0] >= args.checkins:
            break
        if now > end + 120:
            break
    drain_s = time.monotonic() - end
    cpu = cpu_s(gw.pid) - cpu0
    final_rss = rss_kb(gw.pid, "VmRSS:")
    hwm = rss_kb(gw.pid, "VmHWM:")
    gw.terminate(30)
    gw.close()
    for n in nodes:
        n.client.disconnect()
    broker.cleanup()
    db = sqlite3.connect(run_dir / "gateway" / "gateway.sqlite")
    stored = db.execute("SELECT count(*) FROM attendance_events").fetchone()[0]
    distinct = db.execute("SELECT count(DISTINCT event_id) FROM attendance_events").fetchone()[0]
    health_nodes = db.execute("SELECT count(*) FROM nodes WHERE last_health IS NOT NULL").fetchone()[0]
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 100 else [float("nan")] * 99
    return {
        "label": label, "nodes": connected, "connect_s": connect_s, "sent": args.checkins, "acked": acked[0],
        "stored": stored, "distinct": distinct, "heartbeats": heartbeats, "nodes_with_health": health_nodes,
        "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000,
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
        "drain_after_storm_s": drain_s, "state_msgs_per_node": state_messages[0] / max(1, connected), "gw_cpu_s": cpu, "gw_rss_peak_mb": max(peak, hwm) / 1024, "gw_rss_end_mb": final_rss / 1024,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--checkins", type=int, default=5000)
    p.add_argument("--storm-s", type=float, default=60.0)
    p.add_argument("--heartbeat-s", type=float, default=30.0)
    p.add_argument("--quick", action="store_true", help="200 nodes, 1000 check-ins in 15 s: a smoke test")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    args = p.parse_args()
    if args.quick:
        args.nodes, args.checkins, args.storm_s, args.heartbeat_s = 200, 1000, 15.0, 10.0
    work = Path(tempfile.mkdtemp(prefix="congso-scale-"))
    results = []
    try:
        for label, env in (("batched", {}), ("batch_max=1", {"CONGSO_GATEWAY_BATCH_MAX": "1"})):
            print(f"run {label}: {args.nodes} nodes, heartbeat every {args.heartbeat_s:g} s, "
                  f"{args.checkins} check-ins in {args.storm_s:g} s ...", flush=True)
            results.append(run(label.replace("=", "-"), args, work, env))
            results[-1]["label"] = label
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    cols = ["label", "nodes", "sent", "stored", "distinct", "p50_ms", "p95_ms", "p99_ms", "max_ms",
            "drain_after_storm_s", "state_msgs_per_node", "gw_cpu_s", "gw_rss_peak_mb", "gw_rss_end_mb", "heartbeats", "nodes_with_health", "connect_s"]
    print()
    for c in cols:
        print(f"{c:>22}: " + "  ".join(f"{r[c]:>12.1f}" if isinstance(r[c], float) else f"{r[c]:>12}" for r in results))
    ok = all(r["stored"] == r["sent"] == r["distinct"] for r in results)
    print("\nnothing lost, nothing twice" if ok else "\nMISMATCH: events lost or duplicated")
    print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
