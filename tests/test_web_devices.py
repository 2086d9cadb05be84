"""Thiết bị: what `congso nodes` shows, and the identify, reload and screenshot buttons, per role.

The registry is filled by the gateway's real ingest (the nodes' status and
health messages). Where a test needs the gateway's side of a command, a
thread does what the running gateway does with the gateway's own code:
``commands.send_queued`` takes the queued command, and the node's reply
goes through ``Ingest`` (the real round trip, with a real TV, is in
``test_web_dashboard.py``).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

import pytest

from congso.gateway import commands, registry
from congso.gateway.db import open_db
from congso.web.pages import devices

from test_web_dashboard import SITE, TZ, ZONE, feed, node_up
from web_helpers import Console


@pytest.fixture
def office(tmp_path):
    c = Console(tmp_path)
    node_up(c.db, "door-1", "attendance", devices={"fingerprint": "ok", "card": "missing"})
    node_up(c.db, "tv-1", "signage", clock_synced=False, devices={"display": "ok", "cec": "ok"})
    node_up(c.db, "kiosk-1", "rating", state="offline")
    return c


def _flash(client, response) -> str:
    assert response.status_code == 303, response.text[:500]
    html = client.get(response.headers["location"]).text
    start = html.find('<p class="flash" role="status">')
    assert start >= 0, html[:2000]
    return html[start:html.find("</p>", start)]


def _audit(db, action):
    return [(r[0], r[1], json.loads(r[2])) for r in
            db.execute("SELECT actor, target, detail FROM audit_log WHERE action=? ORDER BY id", (action,)).fetchall()]


class Gateway(threading.Thread):
    """The gateway's side of one command: send it (``send_queued``), then feed the node's reply to ingest."""

    def __init__(self, db_path, reply: dict | None):
        super().__init__(daemon=True)
        self.db_path, self.reply, self.sent = db_path, reply, []
        self.start()

    def run(self):
        db = open_db(self.db_path)
        deadline = time.monotonic() + 10
        while not self.sent and time.monotonic() < deadline:
            commands.send_queued(db, SITE, lambda topic, payload, expiry: self.sent.append((topic, json.loads(payload))), TZ)
            time.sleep(0.05)
        if self.sent and self.reply is not None:
            topic, cmd = self.sent[0]
            node = topic.rsplit("/", 1)[1]
            feed(db, node, "reply", {"v": 1, "cmd_id": cmd["cmd_id"], **self.reply})
        db.conn.close()


def test_the_list_shows_what_congso_nodes_shows_in_plain_words(office):
    for role in ("admin", "clerk"):
        client = office.as_role(role)
        html = client.get("/devices").text
        assert "door-1" in html and "Máy chấm công" in html and "Màn hình TV" in html and "Máy đánh giá" in html
        assert "Đang hoạt động" in html and "Mất kết nối" in html
        assert "Đồng hồ chưa đồng bộ" in html and "Đã đồng bộ" in html          # tv-1 / door-1
        assert "đầu đọc thẻ: không thấy" in html and "Thiết bị đầu đọc thẻ: không thấy" in html  # health and alert
        assert "0.1.0" in html and "giây trước" in html
        # Buttons: what each node answers. A door identifies itself only; a TV and a kiosk also reload
        # and show their screen.
        for node in ("door-1", "tv-1", "kiosk-1"):
            assert f'action="/devices/{node}/identify"' in html
        for node in ("tv-1", "kiosk-1"):
            assert f'action="/devices/{node}/reload"' in html and f'action="/devices/{node}/screenshot"' in html
        assert 'action="/devices/door-1/reload"' not in html and 'action="/devices/door-1/screenshot"' not in html
        assert "Mất kết nối: không gửi lệnh được" in html  # kiosk-1, said before anyone presses
        fragment = client.get("/fragments/devices")
        assert fragment.status_code == 200 and "<html" not in fragment.text and "door-1" in fragment.text
        assert 'data-refresh="/fragments/devices"' in html
    assert client.get("/").text.count('href="/devices"') >= 1  # in the menu
    # The page's problems are the gateway's alerts (registry.current_alert), node by node.
    now = datetime.now(ZONE)
    for row in office.db.query("SELECT * FROM nodes"):
        assert bool(registry.problems(row, now)) == bool(registry.current_alert(row, now)), row["node_id"]


def test_only_admin_and_clerk_see_the_devices_or_press_a_button(office):
    for role in ("officer", "viewer"):
        client = office.as_role(role)
        for url in ("/devices", "/fragments/devices"):
            assert client.get(url).status_code == 403, (role, url)
        assert 'href="/devices"' not in client.get("/").text
        for cmd in ("identify", "reload", "screenshot"):
            r = client.post(f"/devices/door-1/{cmd}", data={"csrf_token": client.csrf})
            assert r.status_code == 403, (role, cmd)
    clerk = office.as_role("clerk")
    # Without the form's CSRF token: refused too, nothing queued.
    assert clerk.post("/devices/door-1/identify", data={}).status_code == 403
    assert clerk.post("/devices/door-1/identify", data={"csrf_token": "forged"}).status_code == 403
    assert office.db.execute("SELECT count(*) FROM outgoing_commands").fetchone()[0] == 0
    anonymous = office.client()
    assert anonymous.get("/devices").status_code == 303
    assert anonymous.get("/devices").headers["location"].startswith("/login")


def test_an_offline_node_says_so_before_anything_is_sent(office):
    clerk = office.as_role("clerk")
    started = time.monotonic()
    flash = _flash(clerk, clerk.post("/devices/kiosk-1/identify", data={"csrf_token": clerk.csrf}))
    assert "kiosk-1: thiết bị đang mất kết nối" in flash and "lệnh không được gửi" in flash
    assert time.monotonic() - started < 3
    assert office.db.execute("SELECT count(*) FROM outgoing_commands").fetchone()[0] == 0
    assert _audit(office.db, "node.identify") == [("u-clerk", "kiosk-1", {"outcome": "offline, not sent"})]


def test_done_refused_not_delivered_and_no_reply_each_in_vietnamese(office, monkeypatch):
    monkeypatch.setitem(devices.WAIT_S, "identify", 1.5)
    monkeypatch.setitem(devices.WAIT_S, "reload", 1.5)
    admin = office.as_role("admin")
    form = {"csrf_token": admin.csrf}

    gw = Gateway(office.db_path, {"ok": True, "result": {"blinked": True}})
    flash = _flash(admin, admin.post("/devices/door-1/identify", data=form))
    gw.join(5)
    assert gw.sent and gw.sent[0][0] == f"congso/{SITE}/cmd/door-1" and gw.sent[0][1]["cmd"] == "identify"
    assert "door-1 đã nhận lệnh nhận diện" in flash

    gw = Gateway(office.db_path, {"ok": False, "error": "the display is busy"})
    flash = _flash(admin, admin.post("/devices/tv-1/reload", data=form))
    gw.join(5)
    assert "Tải lại tv-1: thiết bị báo lỗi: the display is busy" in flash

    # No gateway running: the command is never sent, and never will be.
    flash = _flash(admin, admin.post("/devices/tv-1/reload", data=form))
    assert "lệnh chưa gửi được và đã hết hạn" in flash
    state = office.db.execute("SELECT outcome FROM outgoing_commands WHERE cmd='reload' ORDER BY queued_at DESC").fetchone()
    assert state == ("expired",)

    # Sent, but the node keeps quiet.
    gw = Gateway(office.db_path, None)
    flash = _flash(admin, admin.post("/devices/tv-1/identify", data=form))
    gw.join(5)
    assert "Nhận diện tv-1: đã gửi nhưng thiết bị không trả lời trong 1,5 giây" in flash

    outcomes = [(t, d["outcome"]) for _, t, d in _audit(office.db, "node.identify") + _audit(office.db, "node.reload")]
    assert outcomes == [("door-1", "done"), ("tv-1", "no reply"), ("tv-1", "refused"), ("tv-1", "expired")]


def test_a_screenshot_is_kept_for_the_dashboard(office, monkeypatch):
    import base64

    from test_web_dashboard import _png

    png = _png(128, 72)
    clerk = office.as_role("clerk")
    gw = Gateway(office.db_path, {"ok": True, "result": {"png_base64": base64.b64encode(png).decode(), "width": 128,
                                                         "height": 72}})
    r = clerk.post("/devices/tv-1/screenshot", data={"csrf_token": clerk.csrf})
    gw.join(5)
    assert r.status_code == 303 and r.headers["location"] == "/devices#screen-tv-1"
    assert "Đã chụp màn hình tv-1." in _flash(clerk, r)
    assert clerk.get("/devices/tv-1/screen.png").content == png
    assert '<img class="screen" src="/devices/tv-1/screen.png?t=' in clerk.get("/devices").text
    assert '<img class="screen" src="/devices/tv-1/screen.png?t=' in clerk.get("/").text
    assert _audit(office.db, "node.screenshot") == [("u-clerk", "tv-1", {"outcome": "done", "bytes": len(png)})]


def test_unknown_nodes_wrong_commands_and_foreign_redirects(office):
    clerk = office.as_role("clerk")
    form = {"csrf_token": clerk.csrf}
    assert clerk.post("/devices/no-such-node/identify", data=form).status_code == 404
    assert clerk.post("/devices/door-1/blink", data=form).status_code in (404, 405)
    for cmd in ("screenshot", "reload"):  # a door has no screen, and nothing to reload
        flash = _flash(clerk, clerk.post(f"/devices/door-1/{cmd}", data=form))
        assert "thiết bị này không có lệnh đó" in flash
    # "next" may only be the dashboard or this page, never another site.
    r = clerk.post("/devices/kiosk-1/reload", data={**form, "next": "https://evil.example/"})
    assert r.headers["location"] == "/devices"
    r = clerk.post("/devices/kiosk-1/reload", data={**form, "next": "/"})
    assert r.headers["location"] == "/"
    assert office.db.execute("SELECT count(*) FROM outgoing_commands").fetchone()[0] == 0
