"""Slides' media over HTTP, and picture/video slides in the console.

The first part runs the real ``congso web run`` against the test broker's
real password file (Mosquitto's ``$7$`` hashes, written by
``mosquitto_passwd``) and fetches as a TV would: the node's id and MQTT
password over HTTP Basic. The second part uploads through the console's
own form (multipart, CSRF) under Starlette's TestClient, as
``test_web_announcements.py`` does.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from congso.gateway import accounts, media
from congso.gateway.db import open_db
from congso.protocol import settings as settings_mod
from congso.tools import harness
from web_helpers import PASSWORD, Console

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=ZONE)
SHA_RE = re.compile(r"/announcements/media/([0-9a-f]{64})")


def jpeg(size=(2600, 1400), color=(20, 140, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def clip(path: Path, seconds: int = 2) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=320x240:rate=25",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)
    return path


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Http:
    """Raw requests (the path sent exactly as written: no client-side clean-up of ``..``)."""

    def __init__(self, url: str):
        u = urlparse(url)
        self.host, self.port = u.hostname, u.port

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


@pytest.fixture
def served(broker, spawn, tmp_path):
    """A picture (with renditions) and a clip in the gateway's store, and ``congso web run`` serving them."""
    gw_dir = tmp_path / "gw"
    settings = settings_mod.load(environ={"CONGSO_DATA_DIR": str(gw_dir)})
    db = open_db(gw_dir / "gateway.sqlite")
    picture = media.add_file(db, gw_dir, jpeg(), "poster.jpg", settings, NOW, "test")
    video = media.add_file(db, gw_dir, clip(tmp_path / "c.mp4"), "c.mp4", settings, NOW, "test")
    accounts.add_user(db, "van-thu", "clerk", PASSWORD)  # a console user: not a node
    db.conn.close()
    passwd = broker.conf / "passwd"
    proc, url = harness.start_console(spawn, broker.env("gateway", gw_dir, CONGSO_WEB_BROKER_PASSWD=str(passwd)))
    rends = open_db(gw_dir / "gateway.sqlite").execute(
        "SELECT sha256 FROM media_renditions WHERE source_sha256=?", [picture["sha256"]]).fetchall()
    return {"http": Http(url), "proc": proc, "dir": gw_dir, "picture": picture, "video": video,
            "renditions": [r[0] for r in rends], "tv": broker.credentials["tv-1"], "gateway": broker.credentials["gateway"],
            "passwd": passwd}


def test_a_tv_fetches_originals_and_renditions_as_itself(served):
    http, tv = served["http"], basic("tv-1", served["tv"])
    assert served["passwd"].read_text().split("tv-1:", 1)[1].startswith("$7$")  # the hashes the route verifies
    for sha, mime in ([(served["picture"]["sha256"], "image/jpeg"), (served["video"]["sha256"], "video/mp4")]
                      + [(r, "image/jpeg") for r in served["renditions"]]):
        status, headers, body = http.get(f"/media/{sha}", tv)
        assert status == 200, (status, body[:200])
        assert hashlib.sha256(body).hexdigest() == sha
        assert headers["content-type"] == mime and headers["etag"] == f'"{sha}"'
        assert headers["cache-control"] == "private, max-age=31536000, immutable"
    assert len(served["renditions"]) == 1  # 2600x1400: only the 1920x1080 box is smaller
    # Range (a TV resuming a clip) and a revalidation.
    sha = served["video"]["sha256"]
    status, headers, body = http.get(f"/media/{sha}", {**tv, "Range": "bytes=0-99"})
    assert status == 206 and len(body) == 100 and headers["content-range"].endswith(f"/{served['video']['size']}")
    status, _, body = http.get(f"/media/{sha}", {**tv, "If-None-Match": f'"{sha}"'})
    assert status == 304 and body == b""


def test_anyone_but_a_node_with_its_password_is_refused(served):
    http, sha = served["http"], served["picture"]["sha256"]
    for headers in ({}, basic("tv-1", "sai-mat-khau"), basic("tv-1", served["gateway"]), basic("tv-9", served["tv"]),
                    basic("gateway", served["gateway"]), basic("van-thu", PASSWORD), {"Authorization": "Bearer x"},
                    {"Authorization": "Basic !!!not-base64"}):
        status, h, body = http.get(f"/media/{sha}", headers)
        assert status == 401, (headers, status)
        assert h["www-authenticate"] == 'Basic realm="congso media"' and hashlib.sha256(body).hexdigest() != sha
    # A wrong password retried is logged once (a minute), not once per try.
    for _ in range(3):
        assert http.get(f"/media/{sha}", basic("door-1", "sai"))[0] == 401
    time.sleep(0.3)
    log = served["proc"].log_path.read_text(errors="replace")
    assert log.count("refused 'door-1'") == 1 and "wrong password" in log


def test_unknown_hashes_and_path_tricks_are_404(served):
    http, tv = served["http"], basic("tv-1", served["tv"])
    (served["dir"] / "media" / ("f" * 64 + ".bak")).write_bytes(b"secret")
    sha = served["picture"]["sha256"]
    for path in (f"/media/{'0' * 64}", f"/media/{sha.upper()}", f"/media/{sha[:-1]}", f"/media/{'f' * 64}.bak",
                 "/media/..%2Fgateway.sqlite", "/media/..%2F..%2Fgateway.sqlite", "/media/%2e%2e%2fgateway.sqlite",
                 "/media/.%2Fgateway.sqlite", f"/media/{sha}%00", f"/media/{sha}/..%2F..%2Fgateway.sqlite",
                 "/media/%2Fetc%2Fpasswd", "/media/.upload-x"):
        status, _, body = http.get(path, tv)
        assert status == 404, (path, status)
        assert b"SQLite format" not in body and b"secret" not in body and b"root:" not in body


def test_the_route_needs_the_broker_password_file(broker, spawn, tmp_path):
    gw_dir = tmp_path / "gw"
    open_db(gw_dir / "gateway.sqlite").conn.close()
    proc, url = harness.start_console(spawn, broker.env("gateway", gw_dir, CONGSO_WEB_BROKER_PASSWD=str(tmp_path / "none")))
    status, _, _ = Http(url).get(f"/media/{'a' * 64}", basic("tv-1", broker.credentials["tv-1"]))
    assert status == 503
    time.sleep(0.3)
    assert "[web] broker_passwd" in proc.log_path.read_text(errors="replace")


# -- the console's form ------------------------------------------------------------------------

@pytest.fixture
def console(tmp_path):
    return Console(tmp_path, clock=lambda: NOW)


@pytest.fixture
def clerk(console):
    return console.as_role("clerk")


def post(client, url="/announcements/new", files=None, **fields):
    data = {"csrf_token": client.csrf, "title": "Tiêm chủng mở rộng", "action": "save", "body": "", "qr_url": "",
            "valid_from": "", "valid_until": "", "schedule": "", "seconds": ""}
    data.update(fields)
    return client.post(url, data=data, files=files or {"media_file": ("", b"", "application/octet-stream")})


def counts(console) -> tuple[int, int, int]:
    folder = media.media_dir(console.data_dir)
    files = [p for p in folder.iterdir()] if folder.exists() else []
    return (console.db.execute("SELECT count(*) FROM announcements").fetchone()[0],
            console.db.execute("SELECT count(*) FROM media").fetchone()[0], len(files))


def test_a_picture_slide_uploaded_in_the_console_is_listed_with_its_thumbnail_and_schedule(console, clerk):
    form = clerk.get("/announcements/new").text
    assert 'enctype="multipart/form-data"' in form and 'name="media_file"' in form
    assert "T2–T6: mon-fri; giờ: 07:30-11:30,13:30-17:00; ngày: 2026-12-05..2026-12-06" in form
    content = jpeg()
    r = post(clerk, files={"media_file": ("poster.jpg", content, "image/jpeg")},
             schedule="mon-fri 07:30-11:30,13:30-17:00", seconds="20")
    assert r.status_code == 303, r.text[:2000]
    (a,) = console.db.query("SELECT * FROM announcements")
    assert a["media_sha256"] == hashlib.sha256(content).hexdigest() and a["body"] == ""
    assert (a["schedule"], a["seconds"]) == ("mon-fri 07:30-11:30,13:30-17:00", 20)
    page = clerk.get("/announcements").text
    assert "Lịch chiếu: T2, T3, T4, T5, T6 · 07:30–11:30, 13:30–17:00" in page and "20 giây mỗi lượt" in page
    (thumb,) = set(SHA_RE.findall(page))
    assert thumb != a["media_sha256"]  # the 1920x1080 rendition, not the 2600-pixel original
    r = clerk.get(f"/announcements/media/{thumb}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(r.content).hexdigest() == thumb
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.size == (1920, 1034)
    audit = [x["action"] for x in console.db.query("SELECT action FROM audit_log ORDER BY id")]
    assert "media.add" in audit and "announcements.add" in audit
    # Editing the text keeps the picture; "Bỏ ảnh/video" drops it.
    edit = clerk.get(f"/announcements/{a['id']}/edit").text
    assert f"/announcements/media/{thumb}" in edit and 'value="mon-fri 07:30-11:30,13:30-17:00"' in edit
    assert post(clerk, f"/announcements/{a['id']}/edit", title="Tiêm chủng (mới)", schedule="mon-fri", seconds="20").status_code == 303
    (b,) = console.db.query("SELECT * FROM announcements")
    assert (b["title"], b["media_sha256"], b["schedule"]) == ("Tiêm chủng (mới)", a["media_sha256"], "mon-fri")
    assert post(clerk, f"/announcements/{a['id']}/edit", remove_media="1").status_code == 303
    assert list(console.db.query("SELECT media_sha256 FROM announcements"))[0]["media_sha256"] is None
    assert counts(console) == (1, 0, 0)  # the picture no slide uses now is gone, renditions too


def test_a_video_slide_shows_its_length(console, clerk, tmp_path):
    video = clip(tmp_path / "gioi-thieu.mp4", seconds=3).read_bytes()
    r = post(clerk, title="Dịch vụ công trực tuyến", files={"media_file": ("gioi-thieu.mp4", video, "video/mp4")})
    assert r.status_code == 303, r.text[:2000]
    page = clerk.get("/announcements").text
    assert "Video 0:03" in page


@pytest.mark.parametrize("name, content, said", [
    ("anh.jpg", b"<html><body>trang web</body></html>", "Tệp này là trang HTML/XML, không phải ảnh hay video"),
    ("anh.jpg", b"%PDF-1.5 ...", "Tệp này là tài liệu PDF"),
    ("video.mp4", "đây là văn bản".encode(), "Tệp này là văn bản thường"),
    ("anh.png", None, "Ảnh bị hỏng hoặc không đọc được"),
], ids=["html-as-jpg", "pdf-as-jpg", "text-as-mp4", "truncated"])
def test_a_bad_upload_is_refused_in_vietnamese_and_nothing_is_stored(console, clerk, name, content, said):
    if content is None:
        buf = io.BytesIO()
        Image.new("RGB", (800, 600), (1, 2, 3)).save(buf, "PNG")
        content = buf.getvalue()[:-300]
    r = post(clerk, title="Giữ nguyên tiêu đề", files={"media_file": (name, content, "image/jpeg")},
             schedule="mon-fri")
    assert r.status_code == 422
    assert said in r.text and "Chưa lưu được thông báo" in r.text
    assert 'value="Giữ nguyên tiêu đề"' in r.text and 'value="mon-fri"' in r.text  # what was typed is kept
    assert counts(console) == (0, 0, 0)


def test_a_bad_schedule_or_seconds_stores_no_file(console, clerk):
    for fields, said in (({"schedule": "t2-t6"}, "--schedule"), ({"seconds": "0"}, "--seconds")):
        r = post(clerk, files={"media_file": ("poster.jpg", jpeg(), "image/jpeg")}, **fields)
        assert r.status_code == 422 and said in r.text and "Chưa lưu được thông báo" in r.text
    assert counts(console) == (0, 0, 0)


def test_the_upload_form_keeps_its_csrf_check_and_its_permission(console, clerk):
    r = clerk.post("/announcements/new", data={"title": "Không có mã CSRF", "action": "save"},
                   files={"media_file": ("poster.jpg", jpeg(), "image/jpeg")})
    assert r.status_code == 403
    assert counts(console) == (0, 0, 0)
    assert post(clerk, files={"media_file": ("poster.jpg", jpeg((800, 600)), "image/jpeg")}).status_code == 303
    (a,) = console.db.query("SELECT media_sha256 FROM announcements")
    officer = console.as_role("officer")
    assert officer.get(f"/announcements/media/{a['media_sha256']}").status_code == 403
    assert console.client().get(f"/announcements/media/{a['media_sha256']}").status_code in (302, 303)  # to the login
    # The node route does not take the console's session either.
    assert clerk.get(f"/media/{a['media_sha256']}").status_code == 401
    assert clerk.get(f"/announcements/media/{'0' * 64}").status_code == 404
