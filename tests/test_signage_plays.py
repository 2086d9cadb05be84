"""Proof of play from the real TV: one ``play`` event per showing, exactly once across a SIGKILL.

The real broker, the real gateway and the real TV process rotating two
text notices and the dossiers board one second each. The TV is SIGKILLed
mid-rotation and restarted: every event it had committed before the kill
reaches the gateway's ``play_events`` once (none lost, none twice), each
stamped with the start of its showing, and a screen switched off ends the
showing on it.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime

from signage_helpers import tv_env
from conftest import query, run_congso, start_gateway, wait_for


def _tv_env(broker, tv_dir, **extra):
    return tv_env(broker, tv_dir, CONGSO_SIGNAGE_PAGES="dossiers:1,announcements:1", CONGSO_SIGNAGE_CHECK_HZ="20", **extra)


def _tv_plays(tv_dir) -> dict[str, dict]:
    """Every play event the TV committed (acked or still waiting), by event id."""
    out = {}
    for table in ("acked", "outbox"):
        for (payload,) in query(tv_dir / "outbox.sqlite", f"SELECT payload FROM {table} WHERE kind='play'"):
            ev = json.loads(payload)
            out[ev["event_id"]] = ev
    return out


def _gw_plays(gw_dir) -> list[tuple]:
    return query(gw_dir / "gateway.sqlite",
                 "SELECT event_id, item_type, item_id, seconds, ts, title FROM play_events WHERE node_id='tv-1' ORDER BY ts")


def _unacked(tv_dir) -> int:
    return query(tv_dir / "outbox.sqlite", "SELECT count(*) FROM outbox")[0][0]


def test_every_showing_reaches_the_gateway_once_across_a_sigkill(private_broker, spawn, tmp_path):
    broker = private_broker
    gw_dir, tv_dir = tmp_path / "gw", tmp_path / "tv"
    gw_env = {"CONGSO_DATA_DIR": str(gw_dir), "CONGSO_SITE_ID": "test-site"}
    start_gateway(spawn, broker, gw_dir)
    for title in ("Nộp hồ sơ trực tuyến", "Lịch tiếp công dân"):
        r = run_congso("announce", "add", "--title", title, "--body", "Tại bộ phận một cửa", **gw_env)
        assert r.returncode == 0, r.stderr
    tv = spawn(["signage", "run"], _tv_env(broker, tv_dir), name="tv")
    wait_for(lambda: (tv_dir / "outbox.sqlite").exists() and len(_tv_plays(tv_dir)) >= 6, 30, "six showings", tv)
    tv.proc.send_signal(signal.SIGKILL)
    tv.proc.wait(10)
    before_kill = _tv_plays(tv_dir)

    tv2 = spawn(["signage", "run"], _tv_env(broker, tv_dir), name="tv2")
    wait_for(lambda: len(_tv_plays(tv_dir)) >= len(before_kill) + 4, 30, "more showings after the restart", tv2)
    # The screen switched off ends the showing on it; while it is off nothing is counted.
    r = run_congso("node", "cmd", "tv-1", "display_power", "--args", '{"on": false}', **gw_env)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "display off (override)" in tv2.tail(), 10, "the screen off", tv2)
    time.sleep(1.0)
    at_off = len(_tv_plays(tv_dir))
    time.sleep(2.5)  # more than two rotations' worth
    assert len(_tv_plays(tv_dir)) == at_off
    last = max(_tv_plays(tv_dir).values(), key=lambda e: e["seq"])
    off_at = datetime.fromisoformat(last["ts"]).timestamp() + last["seconds"]
    assert time.time() - off_at > 3.0  # the last showing ended at the off, not later
    tv2.terminate()  # a stop records the showing on screen too
    wait_for(lambda: _unacked(tv_dir) == 0, 20, "every event acked")

    everything = _tv_plays(tv_dir)
    gw = _gw_plays(gw_dir)
    ids = [row[0] for row in gw]
    assert sorted(ids) == sorted(everything), "the gateway holds exactly what the TV recorded"
    assert set(before_kill) <= set(ids), "nothing recorded before the kill was lost"
    # No showing twice: one row per (item, start).
    assert len({(row[2], row[4]) for row in gw}) == len(gw)
    kinds = {(row[1], row[2]) for row in gw}
    assert ("page", "dossiers") in kinds and sum(1 for k in kinds if k[0] == "slide") == 2
    titles = {row[2]: row[5] for row in gw if row[1] == "slide"}
    assert set(titles.values()) == {"Nộp hồ sơ trực tuyến", "Lịch tiếp công dân"}
    # ts is the showing's start: within one run, a showing starts when the one before ended.
    run1 = sorted((ev for ev in everything.values() if ev["event_id"] in before_kill), key=lambda e: e["seq"])
    for a, b in zip(run1, run1[1:]):
        end_a = datetime.fromisoformat(a["ts"]).timestamp() + a["seconds"]
        assert abs(datetime.fromisoformat(b["ts"]).timestamp() - end_a) < 0.3, (a, b)
    assert all(0.5 <= ev["seconds"] <= 3.0 for ev in run1), [ev["seconds"] for ev in run1]
