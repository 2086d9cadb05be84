"""The province's roll-up: attendance and satisfaction across offices.

Each office's Mosquitto bridges ``congso/<site>/#`` out to the province's
broker (``congso broker config --bridge-*``), so the central broker holds
every office's retained state. ``collect`` reads the retained
``state/presence`` and ``state/ratings`` of every site plus the nodes'
statuses, and ``rollup`` turns them into one row per office and a total.
No names and no events cross: only the figures each gateway publishes.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import asdict, dataclass

import paho.mqtt.client as mqtt

from ..protocol import messages

SATISFIED = ("very_satisfied", "satisfied")


@dataclass
class OfficeRow:
    site: str
    date: str | None
    staff_active: int
    checked_in: int
    present_pct: float | None
    unsynced_events: int
    votes_today: int
    votes_month: int
    satisfied_month: int  # very satisfied + satisfied this month
    satisfied_pct_month: float | None
    nodes_online: int
    nodes_total: int


def collect(host: str, port: int, username: str, password: str, wait_s: float = 3.0, cafile: str = "") -> dict[str, dict]:
    """Retained state of every site at the broker: ``{site: {"presence": {...}, "ratings": {...}, "nodes": {id: state}}}``."""
    found: dict[str, dict] = {}
    last = [time.monotonic()]
    subscribed = threading.Event()
    errors: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            errors.append(f"the broker refused the connection: {reason_code}")
            subscribed.set()
            return
        client.subscribe([("congso/+/state/presence", 1), ("congso/+/state/ratings", 1), ("congso/+/node/+/status", 1)])
        subscribed.set()

    def on_message(client, userdata, msg):
        parts = msg.topic.split("/")
        site = parts[1]
        last[0] = time.monotonic()
        try:
            if parts[2] == "state":
                found.setdefault(site, {})[parts[3]] = messages.decode(messages.state_kind(parts[3]), msg.payload)
            elif parts[2] == "node" and msg.payload:
                status = messages.decode("status", msg.payload)
                if status["kind"] != "gateway":
                    found.setdefault(site, {}).setdefault("nodes", {})[status["node_id"]] = status["state"]
        except messages.MessageError:
            pass  # one office's bad message must not spoil the roll-up

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"province-rollup-{int(time.time())}",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    if cafile:
        client.tls_set(ca_certs=cafile, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=30)
    except OSError as e:
        raise ConnectionError(f"cannot reach the province broker at {host}:{port}: {e}") from None
    client.loop_start()
    try:
        if not subscribed.wait(10):
            raise ConnectionError(f"no answer from the province broker at {host}:{port}")
        if errors:
            raise ConnectionError(errors[0])
        deadline = time.monotonic() + wait_s
        # Retained messages arrive at once; stop when they have stopped coming.
        while time.monotonic() < deadline and time.monotonic() - last[0] < 0.7:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    return found


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def rollup(found: dict[str, dict]) -> list[OfficeRow]:
    """One row per office, sorted by site, then a ``TOTAL`` row."""
    rows = []
    for site in sorted(found):
        p = found[site].get("presence") or {}
        r = found[site].get("ratings") or {}
        nodes = found[site].get("nodes") or {}
        month = r.get("month") or {}
        votes_month = sum(month.values())
        rows.append(OfficeRow(
            site=site,
            date=p.get("date"),
            staff_active=p.get("staff_active", 0),
            checked_in=p.get("checked_in", 0),
            present_pct=_pct(p.get("checked_in", 0), p.get("staff_active", 0)),
            unsynced_events=p.get("unsynced_events", 0),
            votes_today=sum((r.get("today") or {}).values()),
            votes_month=votes_month,
            satisfied_month=sum(month.get(level, 0) for level in SATISFIED),
            satisfied_pct_month=_pct(sum(month.get(level, 0) for level in SATISFIED), votes_month),
            nodes_online=sum(1 for s in nodes.values() if s == "online"),
            nodes_total=len(nodes),
        ))
    if rows:
        total = OfficeRow(
            site="TOTAL", date=None,
            staff_active=sum(r.staff_active for r in rows), checked_in=sum(r.checked_in for r in rows),
            present_pct=None, unsynced_events=sum(r.unsynced_events for r in rows),
            votes_today=sum(r.votes_today for r in rows), votes_month=sum(r.votes_month for r in rows),
            satisfied_month=sum(r.satisfied_month for r in rows), satisfied_pct_month=None, nodes_online=sum(r.nodes_online for r in rows),
            nodes_total=sum(r.nodes_total for r in rows),
        )
        total.present_pct = _pct(total.checked_in, total.staff_active)
        total.satisfied_pct_month = _pct(total.satisfied_month, total.votes_month)
        rows.append(total)
    return rows


def as_json_lines(rows: list[OfficeRow]) -> str:
    return "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in rows)
