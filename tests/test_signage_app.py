"""The TV node's loop: rotation, settings errors, the systemd watchdog, and bad state kept out."""

from __future__ import annotations

import json
import socket

import pytest

from congso.protocol import messages
from congso.signage_node.app import Rotation, parse_pages

from conftest import SITE, wait_for
from mqtt_helpers import RawClient
from signage_helpers import dossiers_state, tv_env


def test_rotation_gives_each_page_its_duration_and_follows_the_data():
    rot = Rotation({"dossiers": 20.0, "calendar": 10.0})
    slots = [("dossiers", 0), ("dossiers", 1), ("calendar", 0, 0)]
    assert rot.pick(slots, 0.0) == ("dossiers", 0)
    assert rot.pick(slots, 19.9) == ("dossiers", 0)
    assert rot.pick(slots, 20.0) == ("dossiers", 1)
    assert rot.pick(slots, 40.0) == ("calendar", 0, 0)
    assert rot.pick(slots, 49.0) == ("calendar", 0, 0)
    assert rot.pick(slots, 50.0) == ("dossiers", 0)
    rot.pick(slots, 70.0)  # on ("dossiers", 1)
    # The board shrank to one page: stay on the dossiers page rather than jump.
    assert rot.pick([("dossiers", 0), ("calendar", 0, 0)], 71.0) == ("dossiers", 0)
    assert rot.pick([], 72.0) is None


def test_page_settings_errors_name_the_key():
    assert parse_pages(["dossiers:30", "calendar"], 15.0) == [("dossiers", 30.0), ("calendar", 15.0)]
    with pytest.raises(ValueError, match=r"\[signage\] pages: unknown page 'weather'"):
        parse_pages(["weather"], 15.0)
    with pytest.raises(ValueError, match="name or name:seconds"):
        parse_pages(["dossiers:abc"], 15.0)
    with pytest.raises(ValueError, match="is empty"):
        parse_pages([], 15.0)


def _tv_env(broker, tv_dir, **extra):
    return tv_env(broker, tv_dir, CONGSO_SIGNAGE_PAGES="dossiers", **extra)


def test_the_render_loop_feeds_the_watchdog_and_bad_state_keeps_the_last_good_board(broker, spawn, tmp_path):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    notify.bind(str(path))
    notify.settimeout(0.2)
    shots = tmp_path / "shots"
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)],
               _tv_env(broker, tmp_path / "tv", NOTIFY_SOCKET=str(path), WATCHDOG_USEC="2000000"), name="tv")
    got: list[str] = []

    def heard(what):
        try:
            got.append(notify.recv(4096).decode())
        except socket.timeout:
            pass
        return any(what in m for m in got)

    wait_for(lambda: heard("READY=1"), 20, "READY=1 from the TV", tv)
    got.clear()
    wait_for(lambda: heard("WATCHDOG=1"), 5, "a watchdog ping", tv)
    got.clear()
    wait_for(lambda: heard("WATCHDOG=1"), 5, "another watchdog ping", tv)

    # A good board, then a broken one on the same retained topic: the good one stays.
    gw = RawClient(broker.port, "technician", broker.credentials["technician"], client_id="fake-gateway")
    try:
        topic = f"congso/{SITE}/state/dossiers"
        good = dossiers_state(3)
        gw.publish(topic, messages.encode("dossiers", good), retain=True)
        code = good["dossiers"][0]["code"]
        wait_for(lambda: code in (shots / "screen.txt").read_text(encoding="utf-8"), 20, "the good board", tv)
        # The TV's health counts what it rejected: wait for both bad boards to
        # be counted, rather than a fixed time that a busy machine outlasts.
        health: list[dict] = []

        def rejected() -> int | None:
            while (msg := gw.get(timeout=0)) is not None:
                health.append(json.loads(msg.payload))
            return health[-1]["rejected"] if health else None

        gw.subscribe(f"congso/{SITE}/node/tv-1/health")
        wait_for(lambda: rejected() is not None, 10, "the TV's health", tv)
        before = rejected()
        gw.publish(topic, json.dumps({"v": 1, "version": 4, "dossiers": "not a list"}), retain=True)
        gw.publish(topic, b"\xff\xfe garbage", retain=True)
        wait_for(lambda: rejected() == before + 2, 10, "both bad boards rejected", tv)
        assert tv.alive()
        assert code in (shots / "screen.txt").read_text(encoding="utf-8")
        kept = json.loads((tmp_path / "tv" / "state" / "dossiers.json").read_text(encoding="utf-8"))
        assert kept["version"] == good["version"]
        gw.publish(topic, b"", retain=True)  # leave the shared broker clean
    finally:
        gw.close()
        notify.close()
