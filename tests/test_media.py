"""Picture and video slides on the gateway: what an upload must be, what is stored, what the TVs are told.

Every file here is real: pictures drawn with Pillow, clips encoded by
ffmpeg (libx264, libx265 when it is there), and hostile files (a PNG that
decodes to gigapixels, a truncated picture, HTML named .jpg, text named
.mp4). The published board comes from the domain's own builder and is
checked against the wire schema.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from congso.gateway import announcements, media, state
from congso.gateway.db import open_db
from congso.protocol import messages
from congso.protocol import settings as settings_mod

from conftest import run_congso

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=ZONE)  # a Tuesday
SETTINGS = settings_mod.load(environ={})


@pytest.fixture
def gw(tmp_path):
    data = tmp_path / "data"
    return data, open_db(data / "gateway.sqlite")


def jpeg(size=(4000, 3000), color=(200, 30, 30), **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", **save)
    return buf.getvalue()


def png(size=(800, 600), mode="RGBA", color=(0, 120, 200, 128)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def png_bomb(side: int, rows: int | None = None) -> bytes:
    """A PNG of side x side grey pixels, all zero: a few hundred KB that decode to side² bytes
    (``rows``: only that many rows of data, the header still claiming them all)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row = b"\x00" * (side + 1)
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(side if rows is None else rows)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def clip(path: Path, codec: str = "libx264", seconds: int = 2, size: str = "320x240") -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
                    "-c:v", codec, "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)
    return path


def has_encoder(name: str) -> bool:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


def stored_files(data: Path) -> list[str]:
    folder = media.media_dir(data)
    return sorted(os.listdir(folder)) if folder.exists() else []


def refused(db, data, content, name="x.jpg", **kw) -> media.MediaError:
    with pytest.raises(media.MediaError) as e:
        media.add_file(db, data, content, name, SETTINGS, NOW, "test", **kw)
    assert stored_files(data) == [], "a refused upload left a file behind"
    assert db.execute("SELECT count(*) FROM media").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM media_renditions").fetchone()[0] == 0
    return e.value


def test_a_large_photo_is_stored_by_its_hash_with_renditions_fitted_inside_each_box(gw):
    data, db = gw
    content = jpeg((4000, 3000))
    row = media.add_file(db, data, content, "poster.jpg", SETTINGS, NOW, "clerk")
    assert row["sha256"] == hashlib.sha256(content).hexdigest()
    path = media.media_dir(data) / row["sha256"]
    assert path.read_bytes() == content and (path.stat().st_mode & 0o777) == 0o640
    assert (row["kind"], row["mime"], row["width"], row["height"]) == ("image", "image/jpeg", 4000, 3000)
    rends = {(r["width"], r["height"]): r for r in media.renditions(db, row["sha256"])}
    # 4:3 fitted inside 1920x1080 and 3840x2160: the height is what limits.
    assert set(rends) == {(1440, 1080), (2880, 2160)}
    for (w, h), r in rends.items():
        body = (media.media_dir(data) / r["sha256"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == r["sha256"] and len(body) == r["size"]
        with Image.open(io.BytesIO(body)) as im:
            assert im.format == "JPEG" and im.size == (w, h)
            assert im.getpixel((w // 2, h // 2)) == pytest.approx((200, 30, 30), abs=6)
    # The same file again: the same row, nothing stored twice.
    assert media.add_file(db, data, content, "again.jpg", SETTINGS, NOW, "clerk")["sha256"] == row["sha256"]
    assert len(stored_files(data)) == 3


def test_a_picture_smaller_than_every_box_gets_no_rendition_and_alpha_stays_png(gw):
    data, db = gw
    small = media.add_file(db, data, jpeg((1280, 720)), "nho.jpg", SETTINGS, NOW, "clerk")
    assert media.renditions(db, small["sha256"]) == []
    wide = media.add_file(db, data, png((5000, 1000)), "bang.png", SETTINGS, NOW, "clerk")
    rends = media.renditions(db, wide["sha256"])
    assert [(r["width"], r["height"], r["mime"]) for r in rends] == [(1920, 384, "image/png"), (3840, 768, "image/png")]
    with Image.open(media.media_dir(data) / rends[0]["sha256"]) as im:
        assert im.mode == "RGBA" and im.getpixel((10, 10))[3] == 128  # still see-through


def test_exif_orientation_is_applied_so_every_tv_shows_the_photo_upright(gw):
    data, db = gw
    buf = io.BytesIO()
    im = Image.new("RGB", (3000, 2000), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 3000, 1000))  # white on top as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view": a phone held upright
    im.save(buf, "JPEG", exif=exif.tobytes())
    row = media.add_file(db, data, buf.getvalue(), "dien-thoai.jpg", SETTINGS, NOW, "clerk")
    assert (row["width"], row["height"]) == (2000, 3000)
    with Image.open(media.media_dir(data) / row["sha256"]) as stored:
        assert stored.size == (2000, 3000) and stored.getexif().get(0x0112, 1) == 1
        assert stored.getpixel((1900, 1500))[0] > 200 and stored.getpixel((100, 1500))[0] < 50  # white now on the right
    (r1080, r4k) = media.renditions(db, row["sha256"])
    assert (r1080["width"], r1080["height"]) == (720, 1080)


@pytest.mark.parametrize("content, words, vi", [
    (b"", "empty", "Tệp rỗng"),
    (b"%PDF-1.7\n1 0 obj << /Type /Catalog >>", "PDF", "tài liệu PDF"),
    (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "HTML", "trang HTML"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00", "GIF", "ảnh GIF"),
    ("Xin chào, đây là văn bản".encode(), "plain text", "văn bản thường"),
], ids=["zero-bytes", "pdf-named-jpg", "html-named-jpg", "gif", "text"])
def test_a_file_that_is_not_a_picture_or_video_is_refused_by_its_content(gw, content, words, vi):
    data, db = gw
    e = refused(db, data, content, "anh.jpg")
    assert words in str(e) and vi in e.vi


def test_a_truncated_picture_is_refused(gw):
    data, db = gw
    for content in (jpeg((1600, 1200), quality=95)[:-4000], png((900, 700), "RGB", (9, 9, 9))[:-200]):
        e = refused(db, data, content)
        assert "damaged or truncated" in str(e) and "Ảnh bị hỏng" in e.vi


def test_a_decompression_bomb_is_refused_before_it_is_decoded(gw):
    data, db = gw
    bomb = png_bomb(12000)  # 144 megapixels of zeros
    assert len(bomb) < 1024 * 1024
    e = refused(db, data, bomb, "bom.png")
    assert "12000x12000" in str(e) and "8000" in str(e) and "quá giới hạn 8000" in e.vi
    # Past Pillow's own limit: its header alone is refused.
    e = refused(db, data, png_bomb(40000, rows=1), "bom2.png")
    assert "decompression bomb" in str(e) and "quá lớn" in e.vi


def test_limits_come_from_the_media_settings(gw):
    data, db = gw
    tight = settings_mod.load(environ={"CONGSO_MEDIA_MAX_IMAGE_MB": "1", "CONGSO_MEDIA_MAX_SIDE_PX": "1000"})
    with pytest.raises(media.MediaError) as e:
        media.add_file(db, data, jpeg((1200, 800)), "a.jpg", tight, NOW)
    assert "1200x800" in str(e.value)
    noise = io.BytesIO()
    Image.frombytes("RGB", (900, 900), os.urandom(900 * 900 * 3)).save(noise, "PNG")
    with pytest.raises(media.MediaError) as e:
        media.add_file(db, data, noise.getvalue(), "a.png", tight, NOW)
    assert "at most 1 MB" in str(e.value) and "quá giới hạn 1 MB" in e.value.vi
    assert stored_files(data) == []


def test_an_h264_clip_is_kept_as_uploaded_with_its_length(gw, tmp_path):
    data, db = gw
    path = clip(tmp_path / "gioi-thieu.mp4")
    row = media.add_file(db, data, path, "gioi-thieu.mp4", SETTINGS, NOW, "clerk")
    assert (row["kind"], row["mime"], row["codec"], row["width"], row["height"]) == ("video", "video/mp4", "h264", 320, 240)
    assert row["duration_s"] == pytest.approx(2.0, abs=0.1)
    assert (media.media_dir(data) / row["sha256"]).read_bytes() == path.read_bytes()  # no transcoding
    assert media.renditions(db, row["sha256"]) == []
    assert media.duration_vi(row["duration_s"]) == "0:02"


def test_a_clip_the_tvs_cannot_play_is_refused(gw, tmp_path):
    data, db = gw
    e = refused(db, data, b"\x00\x00\x00\x18ftypmp42" + b"this is not a movie" * 50, "video.mp4")
    assert "cannot be read" in str(e) and "Video bị hỏng" in e.vi
    e = refused(db, data, "không phải video".encode(), "video.mp4")
    assert "plain text" in str(e)
    long_clip = clip(tmp_path / "dai.mp4", seconds=4)
    short = settings_mod.load(environ={"CONGSO_MEDIA_MAX_VIDEO_S": "3"})
    with pytest.raises(media.MediaError) as err:
        media.add_file(db, data, long_clip, "dai.mp4", short, NOW)
    assert "at most 3 s" in str(err.value) and "0:04" in err.value.vi
    truncated = long_clip.read_bytes()[: long_clip.stat().st_size // 3]
    refused(db, data, truncated, "cut.mp4")
    if not has_encoder("libx265"):
        pytest.skip("this ffmpeg has no libx265: the HEVC case is not checked here (the H.264 ones above were)")
    hevc = clip(tmp_path / "hevc.mp4", codec="libx265", seconds=1)
    e = refused(db, data, hevc, "hevc.mp4")
    assert "hevc, not H.264" in str(e) and "HEVC" in e.vi and "H.264" in e.vi


def test_asked_for_a_picture_a_video_is_refused_before_it_is_stored(gw, tmp_path):
    data, db = gw
    e = refused(db, data, clip(tmp_path / "c.mp4"), "c.mp4", expect="image")
    assert "use --video" in str(e)


def test_a_full_disk_leaves_no_half_file_and_no_row(tmp_path):
    """The media folder on a 256 KiB tmpfs (root), else under a 256 KiB file-size limit (RLIMIT_FSIZE)."""
    data, db_path = tmp_path / "data", tmp_path / "gateway.sqlite"
    folder = data / "media"
    folder.mkdir(parents=True)
    open_db(db_path).conn.close()
    noise = io.BytesIO()
    Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3)).save(noise, "PNG")
    (tmp_path / "big.png").write_bytes(noise.getvalue())  # ~1 MB: cannot fit
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    code = f"""
import json, resource, signal, sys
from datetime import datetime
from zoneinfo import ZoneInfo
from congso.gateway import media
from congso.gateway.db import open_db
from congso.protocol import settings
if not {mounted}:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))
db = open_db({str(db_path)!r})
try:
    media.add_file(db, {str(data)!r}, {str(tmp_path / 'big.png')!r}, 'big.png', settings.load(environ={{}}),
                   datetime(2026, 12, 1, 9, 30, tzinfo=ZoneInfo('Asia/Ho_Chi_Minh')))
    print(json.dumps({{"stored": True}}))
except media.MediaError as e:
    print(json.dumps({{"en": str(e), "vi": e.vi}}))
"""
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert "disk is full" in result["en"] and "Ổ đĩa của máy chủ đã đầy" in result["vi"], result
        assert os.listdir(folder) == []
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)
    db = open_db(db_path)
    assert db.execute("SELECT count(*) FROM media").fetchone()[0] == 0


def test_the_published_board_carries_the_manifest_schedule_and_seconds(gw, tmp_path):
    data, db = gw
    pic = media.add_file(db, data, jpeg((4000, 3000)), "poster.jpg", SETTINGS, NOW, "clerk")
    vid = media.add_file(db, data, clip(tmp_path / "c.mp4"), "c.mp4", SETTINGS, NOW, "clerk")
    tz = "Asia/Ho_Chi_Minh"
    a = announcements.add(db, title="Tiêm chủng mở rộng", body="", tz=tz, now=NOW, media_sha256=pic["sha256"],
                          schedule="mon-fri  07:30-11:30,13:30-17:00", seconds="20")
    b = announcements.add(db, title="Dịch vụ công trực tuyến", body="", tz=tz, now=NOW, media_sha256=vid["sha256"])
    c = announcements.add(db, title="Ngày hội", body="Chỉ hai ngày", tz=tz, now=NOW, schedule="2026-11-20..2026-11-21")
    payload = announcements.build(db, state.Context("ky-chau", tz, NOW, SETTINGS))["announcements"]
    messages.validate("announcements", {"v": 1, "version": 1, **payload})
    items = {i["id"]: i for i in payload["items"]}
    assert c["id"] not in items  # its dates are behind us: it would never play again
    pa = items[a["id"]]
    assert (pa["schedule"], pa["seconds"], pa["body"]) == ("mon-fri 07:30-11:30,13:30-17:00", 20, "")
    m = pa["media"]
    assert (m["kind"], m["sha256"], m["size"], m["width"], m["height"], m["duration_s"]) == (
        "image", pic["sha256"], pic["size"], 4000, 3000, None)
    assert [(r["width"], r["height"]) for r in m["renditions"]] == [(1440, 1080), (2880, 2160)]
    for r in m["renditions"]:
        assert hashlib.sha256((media.media_dir(data) / r["sha256"]).read_bytes()).hexdigest() == r["sha256"]
    pb = items[b["id"]]
    assert pb["schedule"] is None and pb["seconds"] is None
    assert pb["media"]["kind"] == "video" and pb["media"]["duration_s"] == pytest.approx(2.0, abs=0.1)
    assert pb["media"]["renditions"] == []
    # A text notice is as before, with null media.
    assert items.get(c["id"]) is None and all("media" in i for i in payload["items"])


def test_slide_options_are_checked_and_name_the_option(gw):
    data, db = gw
    tz = "Asia/Ho_Chi_Minh"
    for kw, words in (({"schedule": "mon-fry"}, "--schedule: 'mon-fry'"), ({"schedule": "07:30-25:00"}, "--schedule"),
                      ({"seconds": "0"}, "--seconds must be 1 to 3600"), ({"seconds": "nhanh"}, "--seconds must be a number"),
                      ({"seconds": 4000}, "--seconds"), ({"media_sha256": "../../etc/passwd"}, "not a SHA-256"),
                      ({"media_sha256": "a" * 64}, "no media file")):
        with pytest.raises(announcements.AnnouncementError) as e:
            announcements.add(db, title="T", body="", tz=tz, now=NOW, **kw)
        assert words in str(e.value)
    assert db.execute("SELECT count(*) FROM announcements").fetchone()[0] == 0


def test_update_keeps_what_it_is_not_given_and_prune_never_removes_a_file_in_use(gw):
    data, db = gw
    tz = "Asia/Ho_Chi_Minh"
    pic = media.add_file(db, data, jpeg((2500, 1500)), "a.jpg", SETTINGS, NOW, "clerk")
    spare = media.add_file(db, data, jpeg((2500, 1500), color=(1, 2, 3)), "b.jpg", SETTINGS, NOW, "clerk")
    a = announcements.add(db, title="A", body="", tz=tz, now=NOW, media_sha256=pic["sha256"], schedule="mon-fri", seconds=9)
    _, after = announcements.update(db, a["id"], title="A2", body="x", tz=tz)
    assert (after["media_sha256"], after["schedule"], after["seconds"]) == (pic["sha256"], "mon-fri", 9)
    later = NOW.replace(hour=12)
    assert [r["sha256"] for r in media.prune_unused(db, data, later)] == [spare["sha256"]]
    assert media.get(db, pic["sha256"]) is not None and (media.media_dir(data) / pic["sha256"]).exists()
    with pytest.raises(media.MediaError) as e:
        media.remove(db, data, pic["sha256"])
    assert a["id"] in str(e.value)
    announcements.update(db, a["id"], title="A2", body="x", tz=tz, media_sha256=None)
    removed = media.prune_unused(db, data, later)
    assert [r["sha256"] for r in removed] == [pic["sha256"]]
    assert stored_files(data) == []  # its renditions went with it


def test_the_cli_adds_edits_and_lists_picture_and_video_slides(tmp_path):
    env = {"CONGSO_DATA_DIR": str(tmp_path / "gw"), "CONGSO_SITE_ID": "ky-chau"}
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(jpeg((2400, 1600)))
    video = clip(tmp_path / "gioi-thieu.mp4")
    r = run_congso("announce", "add", "--title", "Tiêm chủng", "--image", str(poster), "--schedule", "mon-fri 07:30-11:30",
                   "--seconds", "15", **env)
    assert r.returncode == 0, r.stderr
    item_id = r.stdout.split()[1].rstrip(":")
    r = run_congso("announce", "add", "--title", "Giới thiệu", "--video", str(video), **env)
    assert r.returncode == 0 and "video" in r.stdout, r.stderr
    r = run_congso("announce", "add", "--title", "Sai", "--video", str(poster), **env)
    assert r.returncode != 0 and "not a video: use --image" in r.stderr
    bad = tmp_path / "trang.jpg"
    bad.write_text("<html><body>not a picture</body></html>")
    r = run_congso("announce", "add", "--title", "Sai", "--image", str(bad), **env)
    assert r.returncode != 0 and "HTML" in r.stderr
    r = run_congso("announce", "add", "--title", "Sai", "--schedule", "t2-t6", **env)
    assert r.returncode != 0 and "--schedule" in r.stderr
    listed = [json.loads(line) for line in run_congso("announce", "list", "--json", **env).stdout.splitlines()]
    kinds = {x["title"]: (x["kind"], x["schedule"], x["seconds"]) for x in listed}
    assert kinds == {"Tiêm chủng": ("picture 2400x1600", "mon-fri 07:30-11:30", "15"), "Giới thiệu": ("video 0:02", None, None)}
    r = run_congso("announce", "edit", item_id, "--schedule", "", "--seconds", "30", **env)
    assert r.returncode == 0 and "schedule" in r.stdout and "seconds" in r.stdout, r.stderr
    r = run_congso("announce", "edit", item_id, "--no-media", **env)
    assert r.returncode == 0, r.stderr
    listed = {x["id"]: x for x in (json.loads(line) for line in run_congso("announce", "list", "--json", **env).stdout.splitlines())}
    assert (listed[item_id]["kind"], listed[item_id]["schedule"], listed[item_id]["seconds"]) == ("text", None, "30")
    # The picture nobody uses now went with --no-media; prune finds nothing more.
    r = run_congso("media", "prune", "--min-age", "0", **env)
    assert r.returncode == 0 and "removed 0 unused" in r.stdout, r.stderr
    media_rows = [json.loads(line) for line in run_congso("media", "list", "--json", **env).stdout.splitlines()]
    assert [(m["kind"], m["used by"]) for m in media_rows] == [("video", 1)]
    video_id = next(x["id"] for x in listed.values() if x["kind"].startswith("video"))
    r = run_congso("announce", "remove", video_id, **env)
    assert r.returncode == 0 and "removed its media file" in r.stdout, r.stderr
    assert run_congso("media", "list", "--json", **env).stdout.strip() == ""
    assert os.listdir(tmp_path / "gw" / "media") == []
    help_text = run_congso("announce", "add", "--help", **env).stdout
    for example in ("--image poster.jpg", '"mon-fri 07:30-11:30,13:30-17:00"', "--seconds 15", "--video"):
        assert example in help_text
    assert shutil.which("ffprobe")
