"""The urgent notice (issue 18): a red full-screen message over every page of the hall's TVs.

The library's rules; the layout's instructions (no screen); the CLI and the
console; and end to end with the real broker, gateway and TV on SDL's dummy
screen: on the TV within 2 s (the red band's pixels), withdrawn -> gone,
and a TV restarted with the broker down still draws it from its disk cache.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pygame
import pytest

from congso.gateway import state, urgent
from congso.gateway.db import open_db
from congso.protocol import messages
from congso.signage_node import pages
from congso.ui import Box, texts

from signage_helpers import screen_text, tv_env
from conftest import query, run_congso, start_gateway, wait_for
from web_helpers import Console

TZ = "Asia/Ho_Chi_Minh"
ZONE = ZoneInfo(TZ)
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=ZONE)


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "gateway.sqlite")


# -- library -----------------------------------------------------------------------------

def test_add_then_published_until_it_ends(db):
    item = urgent.add(db, "  Mất điện lúc 15:00 ", "Xin quý khách\r\nthông cảm", 30, tz=TZ, now=NOW)
    assert item["title"] == "Mất điện lúc 15:00" and item["body"] == "Xin quý khách\nthông cảm"
    assert item["until"] == "2026-12-01T10:00:00+07:00" and item["nodes"] is None
    built = urgent.build(db, state.Context(site="s", tz=TZ, now=NOW + timedelta(minutes=29)))
    assert built == {"urgent": {"items": [item]}}
    messages.validate("urgent", {"v": 1, "version": 1, **built["urgent"]})  # what the TV accepts
    assert urgent.build(db, state.Context(site="s", tz=TZ, now=NOW + timedelta(minutes=30))) == {"urgent": {"items": []}}


def test_rules(db):
    with pytest.raises(urgent.UrgentError, match="title is empty"):
        urgent.add(db, "   ", "x", 5, tz=TZ, now=NOW)
    with pytest.raises(urgent.UrgentError, match="at most 120"):
        urgent.add(db, "a" * 121, "", 5, tz=TZ, now=NOW)
    with pytest.raises(urgent.UrgentError, match="at most 1000"):
        urgent.add(db, "t", "b" * 1001, 5, tz=TZ, now=NOW)
    for bad in (0, 1441, "abc", -3):
        with pytest.raises(urgent.UrgentError, match="--minutes"):
            urgent.add(db, "t", "", bad, tz=TZ, now=NOW)
    with pytest.raises(urgent.UrgentError, match="control character"):
        urgent.add(db, "t\x07", "", 5, tz=TZ, now=NOW)
    with pytest.raises(urgent.UrgentError, match="not a node id"):
        urgent.add(db, "t", "", 5, "tv-1,TV 2!", tz=TZ, now=NOW)
    db["nodes"].insert({"node_id": "door-1", "kind": "attendance"})
    with pytest.raises(urgent.UrgentError, match="door-1 is not a TV"):
        urgent.add(db, "t", "", 5, ["door-1"], tz=TZ, now=NOW)
    assert urgent.current(db, NOW) == []
    assert urgent.add(db, "t", "", 1440, " tv-1, tv-2,tv-1 ", tz=TZ, now=NOW)["nodes"] == ["tv-1", "tv-2"]


def test_clear_one_or_all(db):
    a = urgent.add(db, "A", "", 10, tz=TZ, now=NOW)
    b = urgent.add(db, "B", "", 10, tz=TZ, now=NOW + timedelta(seconds=1))
    assert [i["id"] for i in urgent.current(db, NOW)] == [b["id"], a["id"]]  # the latest first
    assert [r["id"] for r in urgent.clear(db, a["id"])] == [a["id"]]
    assert [i["id"] for i in urgent.current(db, NOW)] == [b["id"]]
    with pytest.raises(urgent.UrgentError, match="no urgent notice"):
        urgent.clear(db, a["id"])
    assert len(urgent.clear(db)) == 1 and urgent.current(db, NOW) == []


# -- layout --------------------------------------------------------------------------------

def _view(items, node_id="tv-1", now=NOW, **states):
    return pages.View(site_name="UBND xã", now=now, states={"urgent": {"v": 1, "version": 3, "items": items}, **states},
                      node_id=node_id)


def _item(minutes=30, nodes=None, title="Diễn tập phòng cháy chữa cháy", body="Mời quý khách ra sân theo hướng dẫn."):
    return {"id": "u-1", "title": title, "body": body, "until": (NOW + timedelta(minutes=minutes)).isoformat(),
            "nodes": nodes}


def test_layout_over_every_page():
    size = (1280, 720)
    board = {"dossiers": {"v": 1, "version": 1, "dossiers": []}}
    for slot in (None, ("dossiers", 0), ("ratings",)):
        shown = pages.frame(_view([_item()], **board), size, slot)
        assert shown == pages.urgent_page(_view([_item()], **board), size)
    out = pages.urgent_page(_view([_item()]), size)
    by_tag = {t.tag: t.text for t in texts(out)}
    assert by_tag["urgent-label"] == "THÔNG BÁO KHẨN"
    assert by_tag["urgent-title"] == "Diễn tập phòng cháy chữa cháy"
    assert by_tag["urgent-body"] == "Mời quý khách ra sân theo hướng dẫn."
    assert by_tag["urgent-until"].endswith("đến 10:00")
    band = [i for i in out if isinstance(i, Box) and i.color == pages.RED]
    assert band and band[0].rect[:3] == (0, 0, 1280)
    # Nothing drawn in the ticker's strip: the layout stays above it.
    for t in texts(out):
        assert t.rect[1] + t.rect[3] <= 720 - pages.footer_height(size)
    # Portrait and 4K: the same texts, scaled.
    assert {t.tag for t in texts(pages.urgent_page(_view([_item()]), (1080, 1920)))} == set(by_tag)
    assert {t.tag for t in texts(pages.urgent_page(_view([_item()]), (3840, 2160)))} == set(by_tag)


def test_layout_only_while_valid_and_for_this_tv():
    size = (1280, 720)
    assert pages.urgent_page(_view([_item(minutes=-1)]), size) == []  # ended by the TV's own clock
    assert pages.urgent_page(_view([_item(nodes=["tv-2"])]), size) == []  # for another TV
    assert pages.urgent_page(_view([_item(nodes=["tv-2", "tv-1"])]), size) != []
    # Ended: the normal page is back.
    normal = pages.frame(_view([_item(minutes=-1)]), size, None)
    assert "urgent-title" not in {t.tag for t in texts(normal)}
    # Another day: the date too.
    late = pages.urgent_page(_view([_item(minutes=24 * 60)]), size)
    assert {t.tag: t.text for t in texts(late)}["urgent-until"].endswith("đến 09:30 ngày 02/12")


# -- CLI and console -------------------------------------------------------------------------

def test_cli_add_and_clear_audited(tmp_path):
    env = {"CONGSO_DATA_DIR": str(tmp_path), "CONGSO_SITE_ID": "test-site"}
    r = run_congso("announce", "urgent", "Mất điện", "--body", "Từ 15:00", "--minutes", "45", "--nodes", "tv-1", **env)
    assert r.returncode == 0, r.stderr
    assert "on tv-1" in r.stdout
    rows = query(tmp_path / "gateway.sqlite", "SELECT title, nodes FROM urgent")
    assert rows == [("Mất điện", '["tv-1"]')]
    r = run_congso("announce", "urgent", "X", "--minutes", "0", **env)
    assert r.returncode != 0 and "--minutes must be 1 to 1440" in r.stderr
    r = run_congso("announce", "urgent", "--clear", **env)
    assert r.returncode == 0 and "withdrew 1" in r.stdout, r.stderr
    assert query(tmp_path / "gateway.sqlite", "SELECT count(*) FROM urgent") == [(0,)]
    actions = [a for (a,) in query(tmp_path / "gateway.sqlite", "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["urgent.add", "urgent.clear"]


def test_console_form_and_remove(tmp_path):
    console = Console(tmp_path, clock=lambda: NOW)
    clerk = console.as_role("clerk")
    page = clerk.get("/announcements").text
    assert "Thông báo khẩn" in page and 'action="/announcements/urgent"' in page
    r = clerk.post("/announcements/urgent", data={"csrf_token": clerk.csrf, "title": "Nghỉ sớm lúc 16:00",
                                                  "body": "Hẹn quý khách sáng mai.", "minutes": "9999", "nodes": ""})
    assert r.status_code == 422 and "1 to 1440" in r.text and "Nghỉ sớm lúc 16:00" in r.text  # kept what was typed
    r = clerk.post("/announcements/urgent", data={"csrf_token": clerk.csrf, "title": "Nghỉ sớm lúc 16:00",
                                                  "body": "Hẹn quý khách sáng mai.", "minutes": "60", "nodes": ""})
    assert r.status_code == 303
    page = clerk.get("/announcements").text
    assert "Nghỉ sớm lúc 16:00" in page and "trên mọi TV" in page and "10:30" in page
    [row] = list(console.db.query("SELECT id FROM urgent"))
    r = clerk.post("/announcements/urgent/clear", data={"csrf_token": clerk.csrf, "id": row["id"]})
    assert r.status_code == 303
    assert list(console.db.query("SELECT id FROM urgent")) == []
    actions = [a["action"] for a in console.db.query("SELECT action FROM audit_log WHERE action LIKE 'urgent.%' ORDER BY id")]
    assert actions == ["urgent.add", "urgent.clear"]
    # Without the permission: refused.
    officer = console.as_role("officer")
    r = officer.post("/announcements/urgent", data={"csrf_token": officer.csrf, "title": "x", "minutes": "5"})
    assert r.status_code == 403 and list(console.db.query("SELECT id FROM urgent")) == []


# -- end to end ---------------------------------------------------------------------------------

def _tv_env(broker, tv_dir, **extra):
    return tv_env(broker, tv_dir, CONGSO_SIGNAGE_PAGES="dossiers", CONGSO_SIGNAGE_CHECK_HZ="10", **extra)


def _band_is_red(shots) -> bool:
    try:
        image = pygame.image.load(str(shots / "screen.png"))
    except (pygame.error, FileNotFoundError):
        return False
    band = pages.urgent_band_height((1280, 720))
    return all(image.get_at((x, y))[:3] == pages.RED for x, y in ((5, 5), (640, band - 4), (1275, band // 2)))


def test_on_the_tv_within_two_seconds_withdrawn_and_kept_through_a_reboot(private_broker, spawn, tmp_path):
    broker = private_broker
    gw_dir, tv_dir, shots = tmp_path / "gw", tmp_path / "tv", tmp_path / "shots"
    gw_env = {"CONGSO_DATA_DIR": str(gw_dir), "CONGSO_SITE_ID": "test-site"}
    gateway = start_gateway(spawn, broker, gw_dir)
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], _tv_env(broker, tv_dir), name="tv")
    r = run_congso("dossier", "add", "--code", "HS-U-1", "--applicant", "Trần Văn An", "--procedure", "Chứng thực",
                   "--received", "2026-01-05", "--due", "2030-01-06", **gw_env)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "HS-U-1" in screen_text(shots), 30, "the board on the TV", tv)
    assert not _band_is_red(shots)

    r = run_congso("announce", "urgent", "Diễn tập phòng cháy", "--body", "Mời quý khách ra sân", "--minutes", "30",
                   **gw_env)
    assert r.returncode == 0, r.stderr + gateway.tail()
    added = time.monotonic()
    wait_for(lambda: "Diễn tập phòng cháy" in screen_text(shots) and _band_is_red(shots), 10, "the urgent notice", tv)
    assert time.monotonic() - added < 2.0, "the urgent notice took longer than 2 s"
    shown = screen_text(shots)
    assert "THÔNG BÁO KHẨN" in shown and "Mời quý khách ra sân" in shown and "HS-U-1" not in shown
    kept = json.loads((tv_dir / "state" / "urgent.json").read_text(encoding="utf-8"))
    assert kept["items"][0]["title"] == "Diễn tập phòng cháy"

    r = run_congso("announce", "urgent", "--clear", **gw_env)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "HS-U-1" in screen_text(shots) and "THÔNG BÁO KHẨN" not in screen_text(shots)
             and not _band_is_red(shots), 10, "the notice withdrawn", tv)

    # Again, then the broker goes and the TV reboots: drawn from its disk cache.
    r = run_congso("announce", "urgent", "Mất điện lúc 15:00", "--minutes", "30", "--nodes", "tv-1", **gw_env)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "Mất điện lúc 15:00" in screen_text(shots), 10, "the second notice", tv)
    broker.stop()
    tv.terminate()
    (shots / "screen.txt").unlink()
    (shots / "screen.png").unlink()
    tv2 = spawn(["signage", "run", "--screenshot-dir", str(shots)], _tv_env(broker, tv_dir), name="tv2")
    wait_for(lambda: "Mất điện lúc 15:00" in screen_text(shots) and _band_is_red(shots), 20,
             "the kept notice after a restart without the broker", tv2)
    broker.start()
