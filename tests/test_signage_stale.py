"""The TV knows the gateway is gone (issue 18, part 5): a real broker, the
real gateway and `congso signage run` on SDL's dummy screen.

The broker stays up; the gateway is frozen with SIGSTOP (a hung gateway: its
connection stays open, only its heartbeat stops). Within stale_after_s the
TV's header says "Cập nhật lúc HH:MM" (the last heartbeat) with no offline
mark, the board stays; SIGCONT and the mark goes away.
"""

from __future__ import annotations

import os
import re
import signal
import time

from signage_helpers import screen_text, tv_env
from conftest import run_congso, start_gateway, wait_for

STALE_AFTER_S = 3.0


def _tv_env(broker, tv_dir):
    return tv_env(broker, tv_dir, CONGSO_SIGNAGE_PAGES="dossiers", CONGSO_SIGNAGE_CHECK_HZ="10",
                  CONGSO_SIGNAGE_STALE_AFTER_S=str(STALE_AFTER_S))


def test_a_hung_gateway_marks_the_board_not_current_and_the_mark_goes_when_it_returns(private_broker, spawn, tmp_path):
    broker = private_broker
    gw_dir, tv_dir, shots = tmp_path / "gw", tmp_path / "tv", tmp_path / "shots"
    gw_env = {"CONGSO_DATA_DIR": str(gw_dir), "CONGSO_SITE_ID": "test-site"}
    gateway = start_gateway(spawn, broker, gw_dir, CONGSO_HEALTH_INTERVAL_S="1")
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], _tv_env(broker, tv_dir), name="tv")
    r = run_congso("dossier", "add", "--code", "HS-STALE-1", "--applicant", "Trần Văn Bình", "--procedure",
                   "Đăng ký khai sinh", "--received", "2026-01-05", "--due", "2099-01-06", **gw_env)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "HS-STALE-1" in screen_text(shots), 20, "the dossier on the TV", tv)
    # Heartbeats coming: the board is current, no mark (a few seconds past stale_after_s).
    time.sleep(STALE_AFTER_S + 1.5)
    assert "Cập nhật lúc" not in screen_text(shots), screen_text(shots)

    os.kill(gateway.proc.pid, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        wait_for(lambda: "Cập nhật lúc" in screen_text(shots), STALE_AFTER_S + 5, "the stale mark", tv)
        assert time.monotonic() - stopped >= STALE_AFTER_S - 1.5  # not before the gateway could have been late
        shown = screen_text(shots)
        assert "Mất kết nối" not in shown  # the broker is up: not the offline mark
        assert "HS-STALE-1" in shown  # the board stays
        # HH:MM of the last heartbeat, i.e. about when the gateway stopped.
        assert re.search(r"Cập nhật lúc \d\d:\d\d", shown), shown
    finally:
        os.kill(gateway.proc.pid, signal.SIGCONT)
    wait_for(lambda: "Cập nhật lúc" not in screen_text(shots) and "HS-STALE-1" in screen_text(shots), 10,
             "the stale mark gone", tv)


def test_a_gateway_heartbeat_slower_than_stale_after_s_does_not_flicker_the_mark(private_broker, spawn, tmp_path):
    """Heartbeat every 2 s, stale_after_s 1 s: the TV waits 2.5 x 2 s = 5 s, so no mark between heartbeats."""
    broker = private_broker
    gw_dir, tv_dir, shots = tmp_path / "gw", tmp_path / "tv", tmp_path / "shots"
    gw_env = {"CONGSO_DATA_DIR": str(gw_dir), "CONGSO_SITE_ID": "test-site"}
    gateway = start_gateway(spawn, broker, gw_dir, CONGSO_HEALTH_INTERVAL_S="2")
    env = _tv_env(broker, tv_dir)
    env["CONGSO_SIGNAGE_STALE_AFTER_S"] = "1"
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], env, name="tv")
    r = run_congso("dossier", "add", "--code", "HS-STALE-2", "--applicant", "Lê Thị Hoa", "--procedure",
                   "Đăng ký khai sinh", "--received", "2026-01-05", "--due", "2099-01-06", **gw_env)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "HS-STALE-2" in screen_text(shots), 20, "the dossier on the TV", tv)
    until = time.monotonic() + 6
    while time.monotonic() < until:
        assert "Cập nhật lúc" not in screen_text(shots), "stale mark between two heartbeats"
        time.sleep(0.1)
    os.kill(gateway.proc.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: "Cập nhật lúc" in screen_text(shots), 5 + 5, "the stale mark", tv)
    finally:
        os.kill(gateway.proc.pid, signal.SIGCONT)
