"""The technician's view over SSH: `congso nodes`, commands to a node, `congso status`, alerts."""

from __future__ import annotations

import base64
import json

from congso.protocol.node import NodeRuntime

from conftest import query, run_congso, start_gateway, wait_for


def test_nodes_commands_status_and_alerts(spawn, private_broker, tmp_path):
    broker = private_broker
    gw_dir = tmp_path / "gateway"
    gw = start_gateway(spawn, broker, gw_dir)
    gw_env = broker.env("gateway", gw_dir)

    faulty = {"card": "ok"}
    shown = []

    def identify(args):
        shown.append("identify")
        return {"blinked": True}

    node = NodeRuntime(broker.settings("node-a", tmp_path / "node-a"), kind="attendance", devices=lambda: dict(faulty))
    node.commands["identify"] = identify
    node.commands["screenshot"] = lambda args: {"png_base64": base64.b64encode(b"\x89PNG fake").decode(), "width": 1, "height": 1}
    node.start()
    try:
        wait_for(lambda: query(gw_dir / "gateway.sqlite", "SELECT devices FROM nodes WHERE node_id='node-a'") != [(None,)]
                 and query(gw_dir / "gateway.sqlite", "SELECT count(*) FROM nodes WHERE node_id='node-a' AND devices IS NOT NULL")[0][0] == 1,
                 15, "node-a health at the gateway", gw)

        listing = run_congso("nodes", "--json", **gw_env)
        assert listing.returncode == 0, listing.stderr
        rows = {r["node_id"]: r for r in map(json.loads, listing.stdout.splitlines())}
        assert rows["node-a"]["online"] is True and rows["node-a"]["kind"] == "attendance"
        assert rows["node-a"]["devices"] == {"card": "ok"} and rows["node-a"]["clock_synced"] is True
        assert "gateway" in rows
        table = run_congso("nodes", **gw_env)
        assert "node-a" in table.stdout and "attendance" in table.stdout

        answer = run_congso("node", "identify", "node-a", **gw_env)
        assert answer.returncode == 0, answer.stderr
        assert shown == ["identify"] and "node-a identified itself" in answer.stdout
        png = tmp_path / "shot.png"
        shot = run_congso("node", "screenshot", "node-a", "-o", str(png), **gw_env)
        assert shot.returncode == 0, shot.stderr
        assert png.read_bytes() == b"\x89PNG fake"
        unknown = run_congso("node", "cmd", "node-a", "reboot", **gw_env)
        assert unknown.returncode == 1 and "unknown command 'reboot'" in unknown.stderr

        # A device fails: the gateway logs an alert and `nodes` shows it.
        faulty["card"] = "missing"
        wait_for(lambda: "ALERT node node-a: device card missing" in gw.tail(), 15, "device alert", gw)
        rows = {r["node_id"]: r for r in map(json.loads, run_congso("nodes", "--json", **gw_env).stdout.splitlines())}
        assert rows["node-a"]["alert"] == "device card missing"

        # The node's own view, on the node.
        own = run_congso("status", **broker.env("node-a", tmp_path / "node-a"))
        assert own.returncode == 0, own.stdout + own.stderr
        assert "running   yes" in own.stdout and "connected" in own.stdout and "card missing" in own.stdout
    finally:
        node.stop()
    # A clean stop publishes offline: alert, then `status` says the node is not running.
    wait_for(lambda: "ALERT node node-a: offline" in gw.tail(), 15, "offline alert", gw)
    nobody = run_congso("node", "identify", "node-b", "--timeout", "1", **gw_env)
    assert nobody.returncode == 1 and "no reply from node-b" in nobody.stderr
    assert gw.terminate() == 0, gw.tail()
    not_sent = run_congso("node", "identify", "node-a", "--timeout", "1", **gw_env)
    assert "is the gateway running" in not_sent.stderr
