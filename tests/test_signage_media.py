"""Picture and video slides on the real TV: fetched by hash, kept, played from the cache.

Against the real broker, the real gateway (the clerk's ``congso announce add
--image/--video``), the real console web server (``congso web run``, the
``/media/<sha256>`` route, HTTP Basic as the TV) and the real TV process on
SDL's dummy screen, its screenshots' pixels checked:

- an uploaded red-and-blue poster appears on the TV's screen (the rendition
  that covers the screen, not the original); with the gateway, the web
  server and the broker all gone, a restarted TV still shows it from its
  cache;
- a file changed on the way (a server answering other bytes for the hash)
  is refused: never shown, never kept, reported in health;
- a video slide is handed to a real mpv (``--vo=null``) and the TV's screen
  comes back after it; a player that fails is skipped and reported, the
  next page drawn at once.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pygame
import pytest

from congso.signage_node import pages
from congso.tools import harness

from conftest import query, run_congso, start_gateway, wait_for
from signage_helpers import BLUE, OUT, RED, red_blue_picture, tv_env

SIZE = (1280, 720)
SHOTS = OUT / "media-e2e"


def _tv_env(broker, tv_dir, **extra):
    return tv_env(broker, tv_dir, SIZE, CONGSO_SIGNAGE_CHECK_HZ="10", **extra)


def _web(spawn, broker, gw_dir):
    env = broker.env("gateway", gw_dir, CONGSO_WEB_BROKER_PASSWD=str(broker.conf / "passwd"))
    return harness.start_console(spawn, env)


def _near(pixel, colour, tol=40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel[:3], colour))


def _screen(shots: Path):
    try:
        return pygame.image.load(str(shots / "screen.png"))
    except (pygame.error, FileNotFoundError):
        return None


def _shows_poster(shots: Path) -> bool:
    """Red on the left, blue on the right of the slide's box, the letterbox beside it, the header above."""
    image = _screen(shots)
    if image is None:
        return False
    x, y, w, h = pages.slide_body_rect(SIZE)
    mid = y + h // 2
    return (_near(image.get_at((x + w // 2 - 150, mid)), RED) and _near(image.get_at((x + w // 2 + 150, mid)), BLUE)
            and image.get_at((5, mid))[:3] == pages.LETTERBOX and image.get_at((5, 5))[:3] == pages.NAVY)


def _health(gw_dir):
    rows = query(gw_dir / "gateway.sqlite", "SELECT last_health FROM nodes WHERE node_id='tv-1'")
    return json.loads(rows[0][0]) if rows and rows[0][0] else {}


def _announce(gw_dir, *args):
    r = run_congso("announce", "add", *args, CONGSO_DATA_DIR=str(gw_dir), CONGSO_SITE_ID="test-site")
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def _media_sha(gw_dir, kind):
    return query(gw_dir / "gateway.sqlite", "SELECT sha256 FROM media WHERE kind=? ORDER BY created_at DESC", (kind,))[0][0]


def test_a_poster_reaches_the_tv_and_plays_from_its_cache_with_everything_else_gone(private_broker, spawn, tmp_path):
    broker = private_broker
    gw_dir, tv_dir, shots = tmp_path / "gw", tmp_path / "tv", tmp_path / "shots"
    gateway = start_gateway(spawn, broker, gw_dir)
    web, url = _web(spawn, broker, gw_dir)
    poster = tmp_path / "poster.png"
    original, _ = red_blue_picture(poster, (2400, 1350))
    _announce(gw_dir, "--title", "Tiêm chủng mở rộng", "--image", str(poster), "--seconds", "30")
    renditions = query(gw_dir / "gateway.sqlite", "SELECT sha256, width, height FROM media_renditions WHERE source_sha256=?",
                       (original,))
    covering = [r for r in renditions if r[1] >= SIZE[0] and r[2] >= SIZE[1]]
    want = min(covering, key=lambda r: r[1] * r[2])[0] if covering else original

    env = _tv_env(broker, tv_dir, CONGSO_SIGNAGE_PAGES="slides", CONGSO_SIGNAGE_MEDIA_URL=url)
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], env, name="tv")
    wait_for(lambda: _shows_poster(shots), 30, "the poster on the TV's screen", tv)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shots / "screen.png", SHOTS / "poster-1280x720.png")
    assert [p.name for p in (tv_dir / "media").iterdir()] == [want]  # the rendition for this screen, hash-named
    wait_for(lambda: _health(gw_dir).get("devices", {}).get("media") == "ok", 15, "media: ok in health", tv)

    # The gateway, its web server and the broker all go; the TV restarts: the poster from the cache.
    web.terminate()
    gateway.terminate()
    tv.terminate()
    broker.stop()
    (shots / "screen.png").unlink()
    tv2 = spawn(["signage", "run", "--screenshot-dir", str(shots)], env, name="tv2")
    wait_for(lambda: _shows_poster(shots), 20, "the poster from the cache, offline", tv2)
    shutil.copy(shots / "screen.png", SHOTS / "poster-offline-1280x720.png")
    assert "fetched" not in tv2.tail()


def test_a_tv_started_before_the_media_server_fetches_as_soon_as_it_answers(private_broker, spawn, tmp_path):
    """At boot the TV may come up before the console: "connection refused" is a server not up yet,
    retried within seconds (not a file refused by its hash, tried again only after ten minutes)."""
    broker = private_broker
    gw_dir, tv_dir, shots = tmp_path / "gw", tmp_path / "tv", tmp_path / "shots"
    start_gateway(spawn, broker, gw_dir)
    poster = tmp_path / "poster.png"
    red_blue_picture(poster, (1600, 900))
    _announce(gw_dir, "--title", "Tiêm chủng mở rộng", "--image", str(poster), "--seconds", "30")
    port = harness.broker_ops.free_port()
    env = _tv_env(broker, tv_dir, CONGSO_SIGNAGE_PAGES="slides", CONGSO_SIGNAGE_MEDIA_URL=f"http://127.0.0.1:{port}")
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], env, name="tv")
    wait_for(lambda: "Connection refused" in tv.tail(), 20, "the TV finding no media server yet", tv)
    time.sleep(3)  # a few retries go unanswered
    web_env = broker.env("gateway", gw_dir, CONGSO_WEB_BROKER_PASSWD=str(broker.conf / "passwd"))
    harness.start_console(spawn, web_env, port=port)
    wait_for(lambda: _shows_poster(shots), 30, "the poster once the media server answers", tv)


class _Tamperer(http.server.BaseHTTPRequestHandler):
    """Answers every /media/<sha256> with other bytes (a proxy or a disk that changed the file)."""

    body = b""
    asked: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).asked.append((self.path, self.headers.get("Authorization", "")))
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_a_file_changed_on_the_way_is_refused_by_its_hash(private_broker, spawn, tmp_path):
    broker = private_broker
    gw_dir, tv_dir, shots = tmp_path / "gw", tmp_path / "tv", tmp_path / "shots"
    start_gateway(spawn, broker, gw_dir)
    poster = tmp_path / "poster.png"
    original, _ = red_blue_picture(poster, (1280, 720))
    _announce(gw_dir, "--title", "Áp phích", "--image", str(poster))
    # The same length, one byte changed: only the hash can tell.
    data = bytearray(poster.read_bytes())
    data[len(data) // 2] ^= 0xFF
    _Tamperer.body, _Tamperer.asked = bytes(data), []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tamperer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = _tv_env(broker, tv_dir, CONGSO_SIGNAGE_PAGES="slides",
                      CONGSO_SIGNAGE_MEDIA_URL=f"http://127.0.0.1:{server.server_address[1]}")
        tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], env, name="tv")

        def refused():
            h = _health(gw_dir)
            return h.get("devices", {}).get("media") == "error" and "refused" in (h.get("media_problem") or "")

        wait_for(refused, 30, "media: error and the problem in the TV's health", tv)
        assert _Tamperer.asked and _Tamperer.asked[0][0] == f"/media/{original}"
        assert _Tamperer.asked[0][1].startswith("Basic ")  # as this node
        assert _health(gw_dir)["media_cache"]["refused"] >= 1
        assert not (tv_dir / "media").exists() or list((tv_dir / "media").iterdir()) == []  # never kept
        # Never shown: the idle page (office name and clock), no red or blue.
        wait_for(lambda: _screen(shots) is not None, 10, "a frame", tv)
        image = _screen(shots)
        x, y, w, h = pages.slide_body_rect(SIZE)
        assert not _near(image.get_at((x + w // 4, y + h // 2)), RED)
        assert image.get_at((5, 5))[:3] == pages.NAVY
        assert tv.tail().count("changed on the way") == 1  # logged once, however often it is retried
        shutil.copy(shots / "screen.png", SHOTS / "tampered-refused-1280x720.png")
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)
    return path


def test_a_video_slide_goes_to_mpv_and_the_screen_comes_back_and_a_failing_player_is_skipped(
        private_broker, spawn, tmp_path, clip):
    broker = private_broker
    gw_dir, tv_dir, shots = tmp_path / "gw", tmp_path / "tv", tmp_path / "shots"
    start_gateway(spawn, broker, gw_dir)
    web, url = _web(spawn, broker, gw_dir)
    _announce(gw_dir, "--title", "Hướng dẫn nộp hồ sơ trực tuyến", "--video", str(clip))
    sha = _media_sha(gw_dir, "video")
    env = _tv_env(broker, tv_dir, CONGSO_SIGNAGE_PAGES="slides,dossiers:2", CONGSO_SIGNAGE_MEDIA_URL=url,
                  CONGSO_SIGNAGE_VIDEO_PLAYER="mpv,--vo=null,--ao=null,--really-quiet", CONGSO_SIGNAGE_VIDEO_GRACE_S="5")
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], env, name="tv")

    def played():
        rows = query(gw_dir / "gateway.sqlite", "SELECT seconds FROM play_events WHERE media_sha256=?", (sha,))
        return rows

    wait_for(lambda: played() and "video handoff" in tv.tail(), 40, "the clip played by mpv and reported", tv)
    assert 1.5 <= played()[0][0] <= 7  # a 2 s clip, mpv's start included
    wait_for(lambda: "Tình hình giải quyết hồ sơ" in (shots / "screen.txt").read_text(encoding="utf-8"), 10,
             "the TV's own page back after the clip", tv)
    wait_for(lambda: (_health(gw_dir).get("video_handoff") or {}).get("ok") is True, 15, "the handoff in health", tv)
    handoff = _health(gw_dir)["video_handoff"]
    assert handoff["after_ms"] < 1000 and handoff["before_ms"] < 1000  # never a long blank across the handoff
    assert _health(gw_dir)["devices"]["video"] == "ok"
    shutil.copy(shots / "screen.png", SHOTS / "after-video-1280x720.png")
    tv.terminate()

    # A player that fails at once: skipped, reported, the next page at once (never a black screen).
    env["CONGSO_SIGNAGE_VIDEO_PLAYER"] = "false"
    tv2 = spawn(["signage", "run", "--screenshot-dir", str(shots)], env, name="tv2")

    def reported():
        h = _health(gw_dir)
        return h.get("devices", {}).get("video") == "error" and "exited with code 1" in (h.get("video_problem") or "")

    wait_for(reported, 30, "devices.video: error and the problem in health", tv2)
    wait_for(lambda: "Tình hình giải quyết hồ sơ" in (shots / "screen.txt").read_text(encoding="utf-8"), 10,
             "the next page drawn", tv2)
    image = _screen(shots)
    assert image.get_at((5, 5))[:3] == pages.NAVY  # the header: a page, not black
    assert tv2.tail().count("skipped") == 1  # remembered as failed: not retried every rotation
    web.terminate()


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (3840, 2160), (1080, 1920)])
def test_a_picture_slide_fits_between_the_header_and_the_ticker_at_every_resolution(size):
    from signage_helpers import Screen, full_view

    view = full_view()
    slot = [s for s in pages.slots(view, size, ["slides"])]
    assert slot == [("slides", "s1")]
    screen = Screen(size)
    screen.main.preload(pages.frame(view, size, slot[0]))
    screen.draw(view, slot[0])
    x, y, w, h = pages.slide_body_rect(size)
    # A 16:9 poster: fitted to the box's width or height, centred, never cropped.
    k = min(w / 1600, h / 900)
    pw, ph = round(1600 * k), round(900 * k)
    left, top = x + (w - pw) // 2, y + (h - ph) // 2
    assert _near(screen.surface.get_at((left + 3, top + 3)), RED)
    assert _near(screen.surface.get_at((left + pw - 4, top + ph - 4)), BLUE)
    assert screen.surface.get_at((5, 5))[:3] == pages.NAVY  # the header stays (the clock, the stale mark)
    outside = (left - 3, y + h // 2) if left > 3 else (x + w // 2, top - 3)
    assert screen.surface.get_at(outside)[:3] == pages.LETTERBOX
    screen.save(f"{size[0]}x{size[1]}-slide")


# -- the cache's own rules (a real HTTP server on loopback serving the right bytes) ----------------

def test_the_rendition_that_covers_the_screen_is_chosen():
    from congso.signage_node.media_cache import choose

    r = lambda c, w, h: {"sha256": c * 64, "size": w, "width": w, "height": h}  # noqa: E731
    media = {"sha256": "f" * 64, "size": 9, "width": 6000, "height": 4000,
             "renditions": [r("a", 1920, 1080), r("b", 3840, 2160), r("c", 1280, 720)]}
    assert choose(media, (1280, 720))["sha256"] == "c" * 64
    assert choose(media, (1366, 768))["sha256"] == "a" * 64
    assert choose(media, (1920, 1080))["sha256"] == "a" * 64
    assert choose(media, (3840, 2160))["sha256"] == "b" * 64
    assert choose(media, (7680, 4320))["sha256"] == "b" * 64  # none covers: the largest
    assert choose({**media, "renditions": []}, (1920, 1080)) == {"sha256": "f" * 64, "size": 9}  # the original


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict = {}

    def do_GET(self):  # noqa: N802
        body = self.files.get(self.path.rsplit("/", 1)[-1])
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_cache_keeps_within_its_cap_evicting_the_least_recently_shown_never_a_needed_one(tmp_path):
    import hashlib
    import os

    from congso.signage_node.media_cache import MediaCache

    blobs = [bytes([i]) * 400_000 for i in range(4)]
    shas = [hashlib.sha256(b).hexdigest() for b in blobs]
    _Files.files = dict(zip(shas, blobs))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        cache = MediaCache(tmp_path / "media", url, "tv-1", "pw", cap_bytes=1_000_000)  # room for two
        cache.want({shas[0]: 400_000, shas[1]: 400_000})
        cache.fetch_missing()
        assert cache.path(shas[0]) and cache.path(shas[1])
        os.utime(cache.path(shas[0]), (time.time() - 100, time.time() - 100))
        cache.touch(shas[1])  # shown just now
        cache.want({shas[1]: 400_000, shas[2]: 400_000})
        cache.fetch_missing()
        assert cache.path(shas[0]) is None and cache.path(shas[1]) and cache.path(shas[2])  # the older one went
        # Three needed, room for two: the needed ones stay, the cache says it is too small.
        cache.want({shas[1]: 400_000, shas[2]: 400_000, shas[3]: 400_000})
        cache.fetch_missing()
        assert cache.path(shas[1]) and cache.path(shas[2]) and cache.path(shas[3]) is None
        assert cache.status == "error" and "too small" in cache.problem()
        # A restart trusts what is on disk (verified at write), and drops a half-written file.
        (tmp_path / "media" / f"{shas[3]}.part").write_bytes(b"half")
        again = MediaCache(tmp_path / "media", "http://127.0.0.1:9", "tv-1", "pw", cap_bytes=1_000_000)
        assert again.path(shas[1]) and again.path(shas[2]) and not (tmp_path / "media" / f"{shas[3]}.part").exists()
        # The gateway away: a clear problem, retried later, nothing kept.
        again.want({shas[0]: 400_000})
        again.fetch_missing()
        assert again.path(shas[0]) is None and "congso web run" in again.problem()
    finally:
        server.shutdown()


def test_an_urgent_notice_cuts_a_playing_clip(private_broker, spawn, tmp_path):
    broker = private_broker
    gw_dir, tv_dir, shots = tmp_path / "gw", tmp_path / "tv", tmp_path / "shots"
    long_clip = tmp_path / "long.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=5", "-t", "40",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(long_clip)], check=True, timeout=60)
    start_gateway(spawn, broker, gw_dir)
    web, url = _web(spawn, broker, gw_dir)
    _announce(gw_dir, "--title", "Phim tài liệu", "--video", str(long_clip))
    env = _tv_env(broker, tv_dir, CONGSO_SIGNAGE_PAGES="slides", CONGSO_SIGNAGE_MEDIA_URL=url,
                  CONGSO_SIGNAGE_VIDEO_PLAYER="mpv,--vo=null,--ao=null,--really-quiet")
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], env, name="tv")
    wait_for(lambda: (_health(gw_dir).get("page") == "slides" and (tv_dir / "media").exists()
                      and any((tv_dir / "media").iterdir())), 30, "the clip cached and on", tv)
    time.sleep(2.0)  # mpv has the screen
    r = run_congso("announce", "urgent", "Mất điện", "--body", "Từ 15:00", "--minutes", "5",
                   CONGSO_DATA_DIR=str(gw_dir), CONGSO_SITE_ID="test-site")
    assert r.returncode == 0, r.stderr
    asked = time.monotonic()
    wait_for(lambda: "THÔNG BÁO KHẨN" in (shots / "screen.txt").read_text(encoding="utf-8"), 15,
             "the urgent notice over the clip", tv)
    assert time.monotonic() - asked < 8  # the gateway's publish, the player's stop and a frame; not the 40 s clip
    assert "video handoff" in tv.tail()
    web.terminate()


def test_over_https_the_server_is_checked_against_the_office_ca(tmp_path):
    import hashlib
    import ssl

    from congso.signage_node.media_cache import MediaCache
    from test_tls import make_ca_and_server_cert

    (tmp_path / "office").mkdir()
    (tmp_path / "stranger").mkdir()
    office, stranger = make_ca_and_server_cert(tmp_path / "office"), make_ca_and_server_cert(tmp_path / "stranger")
    blob = b"\x89PNG poster bytes" * 1000
    sha = hashlib.sha256(blob).hexdigest()
    _Files.files = {sha: blob}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(office.cert, office.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        wrong = MediaCache(tmp_path / "m1", url, "tv-1", "pw", 10**7, ca_file=stranger.ca)
        wrong.want({sha: len(blob)})
        wrong.fetch_missing()
        assert wrong.path(sha) is None and "certificate" in wrong.problem().lower()
        right = MediaCache(tmp_path / "m2", url, "tv-1", "pw", 10**7, ca_file=office.ca)
        right.want({sha: len(blob)})
        right.fetch_missing()
        assert right.path(sha) is not None and right.path(sha).read_bytes() == blob
        with pytest.raises(ValueError, match="tls_ca .* does not exist"):
            MediaCache(tmp_path / "m3", url, "tv-1", "pw", 10**7, ca_file=str(tmp_path / "none.crt"))
    finally:
        server.shutdown()
