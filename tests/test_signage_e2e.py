"""End to end: a real broker, the real gateway and `congso signage run` on SDL's dummy screen.

A dossier typed at the one-stop desk reaches the TV's screen masked; the
broker goes away and the TV says so but keeps the board; a TV restarted
while the broker is still down draws the last board from its first frame.
"""

from __future__ import annotations

import base64
import io
import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pygame

from congso.signage_node import pages
from congso.ui import Box

from signage_helpers import screen_text, tv_env
from conftest import query, run_congso, start_gateway, wait_for

FULL_NAME = "Nguyễn Thị Thu Hà"
MASKED = "Nguyễn T. T. H."


def _tv_env(broker, tv_dir, **extra):
    return tv_env(broker, tv_dir, CONGSO_SIGNAGE_PAGES="dossiers", CONGSO_SIGNAGE_CHECK_HZ="10", **extra)


def test_a_dossier_reaches_the_tv_masked_and_the_tv_survives_the_broker(private_broker, spawn, tmp_path):
    broker = private_broker
    gw_dir, tv_dir, shots = tmp_path / "gw", tmp_path / "tv", tmp_path / "shots"
    gw_env = {"CONGSO_DATA_DIR": str(gw_dir), "CONGSO_SITE_ID": "test-site"}
    gateway = start_gateway(spawn, broker, gw_dir)
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], _tv_env(broker, tv_dir), name="tv")

    # Typed at the desk (overdue already: its due date has passed).
    r = run_congso("dossier", "add", "--code", "HS-E2E-1", "--applicant", FULL_NAME, "--procedure", "Đăng ký khai sinh",
                   "--received", "2026-01-05", "--due", "2026-01-06", **gw_env)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "HS-E2E-1" in screen_text(shots), 20, "the dossier on the TV", tv)
    shown = screen_text(shots)
    assert MASKED in shown and FULL_NAME not in shown and "Quá hạn" in shown
    # What came over the wire (kept by the TV on disk) never had the full name.
    wire = (tv_dir / "state" / "dossiers.json").read_text(encoding="utf-8")
    assert MASKED in wire and FULL_NAME not in wire

    # The screenshot command, through the gateway's command queue.
    r = run_congso("node", "cmd", "tv-1", "screenshot", "--args", '{"max_width": 1280}', **gw_env)
    assert r.returncode == 0, r.stderr + gateway.tail()
    shot = json.loads(r.stdout)
    assert (shot["width"], shot["height"]) == (1280, 720)
    image = pygame.image.load(io.BytesIO(base64.b64decode(shot["png_base64"])), "shot.png")
    state = json.loads(wire)
    view = pages.View(site_name="x", now=datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")), states={"dossiers": state})
    row = [i for i in pages.dossiers_page(view, (1280, 720)) if isinstance(i, Box) and i.color == pages.RED and i.rect[2] > 600][0]
    x, y, w, h = row.rect
    assert image.get_at((x + 3, y + h // 2))[:3] == pages.RED  # the overdue row, red on the real screen

    # Health carries last_frame_age_s from the render loop.
    def frame_age():
        rows = query(gw_dir / "gateway.sqlite", "SELECT last_health FROM nodes WHERE node_id='tv-1'")
        return json.loads(rows[0][0]).get("last_frame_age_s") if rows and rows[0][0] else None

    wait_for(lambda: frame_age() is not None, 15, "a health message with last_frame_age_s", tv)
    assert frame_age() < 2.0

    # A notice scrolls in the ticker.
    r = run_congso("announce", "add", "--title", "Nộp hồ sơ trực tuyến", "--body", "Cổng dịch vụ công quốc gia",
                   "--qr-url", "https://dichvucong.gov.vn", **gw_env)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "Nộp hồ sơ trực tuyến" in screen_text(shots) and "THÔNG BÁO" in screen_text(shots), 20,
             "the ticker", tv)

    # display_power off (no CEC here: a black screen), then on again.
    r = run_congso("node", "cmd", "tv-1", "display_power", "--args", '{"on": false}', **gw_env)
    assert r.returncode == 0 and json.loads(r.stdout)["on"] is False, r.stderr
    wait_for(lambda: "HS-E2E-1" not in screen_text(shots), 10, "the screen blacked out", tv)
    r = run_congso("node", "cmd", "tv-1", "display_power", "--args", '{"on": true}', **gw_env)
    assert r.returncode == 0 and json.loads(r.stdout)["cec"] == "none", r.stderr
    wait_for(lambda: "HS-E2E-1" in screen_text(shots), 10, "the board back", tv)
    r = run_congso("node", "cmd", "tv-1", "display_power", "--args", '{"on": "yes"}', **gw_env)
    assert r.returncode != 0 and 'display_power needs {"on": true}' in r.stderr

    # The broker goes away: the board stays, with the offline mark.
    broker.stop()
    wait_for(lambda: "Mất kết nối · Cập nhật lúc" in screen_text(shots), 20, "the offline mark", tv)
    assert "HS-E2E-1" in screen_text(shots)

    # Restarted with the broker still down: the last board from the first frame.
    tv.terminate()
    (shots / "screen.txt").unlink()
    started = time.monotonic()
    tv2 = spawn(["signage", "run", "--screenshot-dir", str(shots)], _tv_env(broker, tv_dir), name="tv2")
    wait_for(lambda: "HS-E2E-1" in screen_text(shots), 20, "the kept board after a restart", tv2)
    assert time.monotonic() - started < 15
    assert MASKED in screen_text(shots)
    wait_for(lambda: "Mất kết nối · Cập nhật lúc" in screen_text(shots), 20, "the offline mark after a restart", tv2)

    # The broker is back: the mark goes.
    broker.start()
    wait_for(lambda: "Mất kết nối" not in screen_text(shots) and "HS-E2E-1" in screen_text(shots), 30,
             "the offline mark cleared", tv2)

