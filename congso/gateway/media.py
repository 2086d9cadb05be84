"""Pictures and video clips for the hall TVs' slides: checked, stored by content, with renditions.

``add_file`` takes what the clerk uploaded (the console's form or
``congso announce add --image/--video``) and decides what it is **by its
content**, never by its name: a JPEG or PNG (opened and fully decoded by
Pillow, within ``[media] max_side_px`` and ``max_image_mb``) or an MP4/MOV
with one H.264 video stream (``ffprobe``; at most ``max_video_s`` long,
``max_video_mb`` big and 3840x2160). Anything else is refused with a
``MediaError`` that says, in English (``str(e)``, the CLI) and in
Vietnamese (``e.vi``, the console), what is wrong and what to do.

A file is stored once, named by its SHA-256, as ``<data_dir>/media/<sha256>``
(written to a temporary name, fsynced, then renamed: a crash or a full
disk leaves no half file and no row). A picture gets one rendition fitted
inside each ``[media] renditions`` box smaller than it (so a 4K TV is not
sent a 40 MP photo and a Pi 3 does not scale one), each stored the same
way and listed in ``media_renditions``. A video is played as uploaded: no
transcoding on the gateway (a Pi would take longer than the clip lasts).

``manifest`` is the ``media`` object of a slide in the retained
``announcements`` state; the TV fetches the bytes by hash over HTTP
(``congso/web/pages/media.py``) and checks the hash itself.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import subprocess
import tempfile
import warnings
from datetime import datetime
from pathlib import Path

import sqlite_utils

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_VIDEO_W, MAX_VIDEO_H = 3840, 2160
FFPROBE_TIMEOUT_S = 30
JPEG_QUALITY = 88
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "mp4": "video/mp4"}
# ffprobe names the ISO base media family "mov,mp4,m4a,3gp,3g2,mj2".
VIDEO_FORMATS = {"mov", "mp4", "m4v", "quicktime"}
ALLOWED_VI = "Chỉ nhận ảnh JPEG, PNG hoặc video MP4 (H.264)."


class MediaError(ValueError):
    """An upload refused: ``str(e)`` in English (CLI, logs), ``e.vi`` in Vietnamese (the console)."""

    def __init__(self, en: str, vi: str):
        super().__init__(en)
        self.vi = vi


def media_dir(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / "media"


def file_path(data_dir: str | os.PathLike, sha256: str) -> Path | None:
    """Where the file named ``sha256`` is; None for anything that is not 64 lower-case hex (no path tricks)."""
    if not isinstance(sha256, str) or not SHA256_RE.match(sha256):
        return None
    return media_dir(data_dir) / sha256


# -- what the upload is -----------------------------------------------------------------------

def _sniff(head: bytes) -> str:
    """"image", "video", or a refusal naming what the file looks like instead."""
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image"
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):  # ISO media atoms (older QuickTime: no ftyp)
        return "video"  # ffprobe decides what is inside
    looks = "unknown data"
    stripped = head.lstrip().lower()
    if head.startswith(b"%PDF"):
        looks, looks_vi = "a PDF document", "tài liệu PDF"
    elif stripped.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg", b"<")):
        looks, looks_vi = "an HTML/XML page", "trang HTML/XML"
    elif head.startswith((b"GIF87a", b"GIF89a")):
        looks, looks_vi = "a GIF image", "ảnh GIF"
    elif head.startswith(b"RIFF"):
        looks, looks_vi = "a RIFF file (WebP, AVI or WAV)", "tệp WebP/AVI/WAV"
    elif head.startswith(b"PK\x03\x04"):
        looks, looks_vi = "a ZIP/Office document", "tệp nén hoặc tài liệu Word/Excel"
    elif head[:1] == b"\x1a\x45":
        looks, looks_vi = "a Matroska/WebM video", "video MKV/WebM"
    else:
        try:
            head.decode("utf-8")
            looks, looks_vi = "plain text", "văn bản thường"
        except UnicodeDecodeError:
            looks_vi = "dữ liệu không rõ loại"
    raise MediaError(f"the file is {looks}, not a JPEG, PNG or MP4 (H.264): convert it to one of those and upload again",
                     f"Tệp này là {looks_vi}, không phải ảnh hay video. {ALLOWED_VI} Hãy chuyển tệp sang một trong các dạng đó rồi tải lên lại.")


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}"


def _check_size(kind: str, size: int, media) -> None:
    """Refused before the file is copied anywhere or decoded."""
    if kind == "image":
        limit = media.max_image_mb * 1024 * 1024
        if size > limit:
            raise MediaError(f"the picture is {_mb(size)} MB; at most {media.max_image_mb} MB ([media] max_image_mb): "
                             "save it smaller (e.g. JPEG, 1920x1080) and upload again",
                             f"Ảnh nặng {_mb(size)} MB, quá giới hạn {media.max_image_mb} MB. Hãy lưu ảnh nhỏ hơn "
                             "(ví dụ JPEG 1920x1080) rồi tải lên lại.")
    else:
        limit = media.max_video_mb * 1024 * 1024
        if size > limit:
            raise MediaError(f"the video is {_mb(size)} MB; at most {media.max_video_mb} MB ([media] max_video_mb): "
                             "export it shorter or at a lower bitrate",
                             f"Video nặng {_mb(size)} MB, quá giới hạn {media.max_video_mb} MB. "
                             "Hãy xuất video ngắn hơn hoặc chất lượng thấp hơn rồi tải lên lại.")


def _check_image(path: Path, size: int, media) -> dict:
    from PIL import Image, ImageOps

    side = media.max_side_px
    bad_vi = "Ảnh bị hỏng hoặc không đọc được (có thể tải về chưa hết). Hãy mở ảnh trên máy tính, lưu lại thành JPEG hoặc PNG rồi tải lên lại."
    try:
        with warnings.catch_warnings():
            # A decompression bomb (a few KB that decode to gigapixels) is refused below by its
            # header's size, before any pixel is decoded; Pillow's own warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt, (w, h) = im.format, im.size
                if fmt not in ("JPEG", "PNG"):
                    raise MediaError(f"the picture is {fmt}, not JPEG or PNG", f"Ảnh dạng {fmt}. {ALLOWED_VI}")
                if w > side or h > side or w * h > side * side:
                    raise MediaError(f"the picture is {w}x{h} pixels; at most {side} on a side ([media] max_side_px): "
                                     "resize it and upload again",
                                     f"Ảnh có kích thước {w}x{h} điểm ảnh, quá giới hạn {side} điểm mỗi cạnh. "
                                     "Hãy thu nhỏ ảnh rồi tải lên lại.")
                im.verify()  # structure and checksums (a PNG's CRCs)
            im = Image.open(path)  # kept open: closing would free the pixels the renditions are made from
            im.load()  # every pixel decoded: a truncated file fails here
            turned = im.getexif().get(0x0112, 1) in range(2, 9)  # EXIF Orientation: not "as stored"
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            upright = ImageOps.exif_transpose(im) if turned else im  # one copy in memory, not two
    except MediaError:
        raise
    except Image.DecompressionBombError:  # past Pillow's own hard limit (its header says so)
        raise MediaError(f"the picture decodes to far more than {side}x{side} pixels (a decompression bomb?)",
                         f"Ảnh giải nén ra quá lớn (trên {side}x{side} điểm ảnh). Hãy thu nhỏ ảnh rồi tải lên lại.") from None
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as e:
        why = "not readable" if isinstance(e, Image.UnidentifiedImageError) else str(e)  # never our temporary path
        raise MediaError(f"the picture is damaged or truncated ({why}): open it, save it again as JPEG or PNG, upload again",
                         bad_vi) from None
    return {"kind": "image", "format": fmt, "mime": MIME[fmt], "width": upright.width, "height": upright.height,
            "has_alpha": has_alpha, "turned": turned, "image": upright}


def _ffprobe(path: Path) -> dict:
    try:
        out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                              str(path)], capture_output=True, text=True, timeout=FFPROBE_TIMEOUT_S)
    except FileNotFoundError:
        raise MediaError("ffprobe is not installed on the gateway (apt install ffmpeg)",
                         "Máy chủ chưa cài ffprobe (gói ffmpeg), chưa kiểm tra được video. Hãy báo quản trị viên.") from None
    except subprocess.TimeoutExpired:
        raise MediaError(f"ffprobe did not finish reading the video within {FFPROBE_TIMEOUT_S} s",
                         "Không đọc được video (kiểm tra quá lâu). Hãy xuất lại video dạng MP4 (H.264).") from None
    if out.returncode != 0:
        raise MediaError(f"the video cannot be read ({out.stderr.strip()[:200] or 'ffprobe failed'}): "
                         "export it again as MP4 (H.264)",
                         "Video bị hỏng hoặc không phải MP4. Hãy xuất lại video dạng MP4 (H.264) rồi tải lên lại.")
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        raise MediaError("ffprobe gave no readable answer", "Không đọc được video. Hãy xuất lại dạng MP4 (H.264).") from None


def _check_video(path: Path, size: int, media) -> dict:
    probe = _ffprobe(path)
    fmt = probe.get("format") or {}
    names = set(str(fmt.get("format_name", "")).split(","))
    if not names & VIDEO_FORMATS:
        raise MediaError(f"the video container is {fmt.get('format_name')!r}, not MP4", f"Video không phải dạng MP4. {ALLOWED_VI}")
    videos = [s for s in probe.get("streams") or [] if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    if len(videos) != 1:
        raise MediaError(f"the file has {len(videos)} video streams; a slide needs exactly one",
                         "Tệp không có hình (hoặc có nhiều luồng hình). Hãy xuất lại video MP4 (H.264) có một luồng hình.")
    v = videos[0]
    codec = v.get("codec_name")
    if codec != "h264":
        raise MediaError(f"the video is encoded as {codec}, not H.264: the TVs decode H.264 only; "
                         "export it again as MP4 H.264 (e.g. ffmpeg -i in.mp4 -c:v libx264 -pix_fmt yuv420p out.mp4)",
                         f"Video mã hoá {str(codec).upper()}, TV chỉ phát được H.264. "
                         "Hãy xuất lại video dạng MP4 (H.264) rồi tải lên lại.")
    w, h = int(v.get("width") or 0), int(v.get("height") or 0)
    if not w or not h or max(w, h) > MAX_VIDEO_W or min(w, h) > MAX_VIDEO_H:
        raise MediaError(f"the video is {w}x{h}; at most {MAX_VIDEO_W}x{MAX_VIDEO_H} (4K)",
                         f"Video có kích thước {w}x{h}, quá 4K ({MAX_VIDEO_W}x{MAX_VIDEO_H}). Hãy xuất lại nhỏ hơn.")
    try:
        duration = float(fmt.get("duration") or v.get("duration") or 0)
    except ValueError:
        duration = 0.0
    if duration <= 0:
        raise MediaError("the video has no duration (damaged?)", "Không đọc được độ dài video (tệp hỏng?). Hãy xuất lại.")
    if duration > media.max_video_s:
        raise MediaError(f"the video lasts {duration:.0f} s; at most {media.max_video_s} s ([media] max_video_s)",
                         f"Video dài {_clock(duration)}, quá giới hạn {_clock(media.max_video_s)}. Hãy cắt ngắn rồi tải lên lại.")
    return {"kind": "video", "mime": MIME["mp4"], "width": w, "height": h, "duration_s": round(duration, 3),
            "codec": codec}


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def duration_vi(seconds: float | None) -> str:
    """"0:12" for a clip's length, as the console's list shows it."""
    return _clock(seconds or 0)


# -- storing ----------------------------------------------------------------------------------

_DISK_FULL_VI = "Ổ đĩa của máy chủ đã đầy, chưa lưu được tệp. Hãy báo quản trị viên giải phóng dung lượng rồi thử lại."


def _disk_error(e: OSError) -> MediaError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return MediaError(f"the gateway's disk is full ({e.strerror}); nothing was stored: free some space "
                          "(`congso media prune` removes files no slide uses)", _DISK_FULL_VI)
    return MediaError(f"cannot store the file: {e}", f"Không lưu được tệp trên máy chủ ({e.strerror}). Hãy báo quản trị viên.")


def _write_temp(folder: Path, source) -> tuple[Path, str, int]:
    """The bytes in a temporary file of ``folder`` (fsynced, 0640), its SHA-256 and size."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".upload-", dir=folder)
    tmp = Path(name)
    digest, size = hashlib.sha256(), 0
    try:
        os.fchmod(fd, 0o640)
        with os.fdopen(fd, "wb") as out:
            chunks = (source,) if isinstance(source, bytes) else _chunks(source)
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _disk_error(e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest(), size


def _chunks(source):
    if hasattr(source, "read"):
        while chunk := source.read(1024 * 1024):
            yield chunk
        return
    with open(source, "rb") as f:
        while chunk := f.read(1024 * 1024):
            yield chunk


def _settle(tmp: Path, final: Path) -> None:
    """The temporary file under its final name (same directory: atomic), the directory synced."""
    os.replace(tmp, final)
    dfd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _encode(image, has_alpha: bool) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if has_alpha:
        image.save(buf, "PNG", optimize=False)
        return buf.getvalue(), "image/png"
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return buf.getvalue(), "image/jpeg"


def _boxes(media) -> list[tuple[str, int, int]]:
    out = []
    for text in media.renditions:
        w, _, h = str(text).lower().partition("x")
        try:
            out.append((f"{int(w)}x{int(h)}", int(w), int(h)))
        except ValueError:
            raise MediaError(f"[media] renditions: {text!r} is not WIDTHxHEIGHT (e.g. 1920x1080)",
                             "Cấu hình [media] renditions sai. Hãy báo quản trị viên.") from None
    return out


def _renditions(folder: Path, info: dict, media, made: list[dict]) -> None:
    """One stored rendition per box smaller than the picture (its EXIF orientation applied), into ``made``."""
    from PIL import Image

    image = info["image"]
    for label, bw, bh in _boxes(media):
        if image.width <= bw and image.height <= bh:
            continue  # the original already fits: the TV shows it as it is
        scale = min(bw / image.width, bh / image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        mode = "RGBA" if info["has_alpha"] else ("L" if image.mode == "L" else "RGB")
        fitted = (image if image.mode == mode else image.convert(mode)).resize(size, Image.LANCZOS)
        data, mime = _encode(fitted, info["has_alpha"])
        tmp, sha, n = _write_temp(folder, data)
        _settle(tmp, folder / sha)
        made.append({"sha256": sha, "label": label, "mime": mime, "size": n, "width": size[0], "height": size[1]})


def add_file(db: sqlite_utils.Database, data_dir: str | os.PathLike, path_or_bytes,
             name: str | None, settings, now: datetime, by: str | None = None, expect: str | None = None) -> dict:
    """Check an upload, store it and its renditions; its ``media`` row (the same row again for a file already there).

    ``path_or_bytes``: a path, the bytes, or an open binary file (read from its start).
    ``expect``: "image" or "video" when the caller asked for one (``--image``/``--video``).

    Raises ``MediaError`` with nothing stored (no file, no row) when the
    file is not an allowed picture or video, or the disk is full.
    """
    media = settings.media
    folder = media_dir(data_dir)
    source = path_or_bytes if isinstance(path_or_bytes, bytes) or hasattr(path_or_bytes, "read") else Path(path_or_bytes)
    if hasattr(source, "read"):  # an open file (the console's upload, spooled to disk): never all in memory
        source.seek(0, os.SEEK_END)
        size = source.tell()
        source.seek(0)
        head = source.read(64)
        source.seek(0)
    elif isinstance(source, Path):
        try:
            size = source.stat().st_size
            with open(source, "rb") as f:
                head = f.read(64)
        except OSError as e:
            raise MediaError(f"cannot read {source}: {e.strerror}", f"Không đọc được tệp {name or source}.") from None
    else:
        size, head = len(source), source[:64]
    if size == 0:
        raise MediaError("the file is empty (0 bytes)", "Tệp rỗng (0 byte). Hãy chọn lại tệp ảnh hoặc video.")
    kind = _sniff(head)
    if expect and kind != expect:
        en = {"image": "a picture", "video": "a video"}
        raise MediaError(f"the file is {en[kind]}, not {en[expect]}: use --{kind}",
                         f"Tệp này là {'ảnh' if kind == 'image' else 'video'}, không phải {'ảnh' if expect == 'image' else 'video'}.")
    _check_size(kind, size, media)
    tmp, sha, size = _write_temp(folder, source)
    renditions: list[dict] = []
    try:
        info = _check_image(tmp, size, media) if kind == "image" else _check_video(tmp, size, media)
        known = get(db, sha)
        if known is not None:
            tmp.unlink(missing_ok=True)
            return known
        if kind == "image" and info["turned"]:
            # EXIF says "rotate me": store the picture upright, so every TV shows it the right way up.
            tmp.unlink(missing_ok=True)
            data, info["mime"] = _encode(info["image"], info["has_alpha"])
            tmp, sha, size = _write_temp(folder, data)
        if kind == "image":
            _renditions(folder, info, media, renditions)
        _settle(tmp, folder / sha)
    except (MediaError, OSError) as e:
        tmp.unlink(missing_ok=True)
        for r in renditions:  # no row will name them
            if get(db, r["sha256"]) is None and not _is_rendition(db, r["sha256"]):
                (folder / r["sha256"]).unlink(missing_ok=True)
        if isinstance(e, MediaError):
            raise
        raise _disk_error(e) from None
    row = {"sha256": sha, "kind": kind, "mime": info["mime"], "name": (name or "")[:200] or None, "size": size,
           "width": info["width"], "height": info["height"], "duration_s": info.get("duration_s"),
           "codec": info.get("codec"), "created_at": now.isoformat(timespec="seconds"), "created_by": by}
    with db.conn:
        db["media"].insert(row, replace=True)
        for r in renditions:
            db["media_renditions"].insert({**r, "source_sha256": sha}, replace=True)
    return row


def _is_rendition(db: sqlite_utils.Database, sha256: str) -> bool:
    return db.execute("SELECT 1 FROM media_renditions WHERE sha256=?", [sha256]).fetchone() is not None


# -- reading ----------------------------------------------------------------------------------

def get(db: sqlite_utils.Database, sha256: str) -> dict | None:
    rows = list(db.query("SELECT * FROM media WHERE sha256=?", [sha256]))
    return rows[0] if rows else None


def renditions(db: sqlite_utils.Database, sha256: str) -> list[dict]:
    return list(db.query("SELECT * FROM media_renditions WHERE source_sha256=? ORDER BY width, height", [sha256]))


def lookup(db: sqlite_utils.Database, sha256: str) -> dict | None:
    """An original or a rendition by its hash: {sha256, mime, size, source_sha256}; None if neither."""
    if not SHA256_RE.match(sha256 or ""):
        return None
    row = get(db, sha256)
    if row is not None:
        return {"sha256": sha256, "mime": row["mime"], "size": row["size"], "source_sha256": sha256}
    rows = list(db.query("SELECT sha256, mime, size, source_sha256 FROM media_renditions WHERE sha256=?", [sha256]))
    return rows[0] if rows else None


def manifest(db: sqlite_utils.Database, sha256: str | None) -> dict | None:
    """The ``media`` object of a slide in the ``announcements`` state (PROTOCOL.md); None without one."""
    if not sha256:
        return None
    row = get(db, sha256)
    if row is None:
        return None
    return {"kind": row["kind"], "sha256": row["sha256"], "size": row["size"], "width": row["width"],
            "height": row["height"], "duration_s": row["duration_s"],
            "renditions": [{"sha256": r["sha256"], "size": r["size"], "width": r["width"], "height": r["height"]}
                           for r in renditions(db, sha256)]}


def list_all(db: sqlite_utils.Database) -> list[dict]:
    """Every stored file, with how many slides use it (``used``) and its renditions' total size."""
    return list(db.query(
        "SELECT m.*, (SELECT count(*) FROM announcements a WHERE a.media_sha256=m.sha256) AS used,"
        " (SELECT coalesce(sum(size), 0) FROM media_renditions r WHERE r.source_sha256=m.sha256) AS renditions_size,"
        " (SELECT count(*) FROM media_renditions r WHERE r.source_sha256=m.sha256) AS renditions"
        " FROM media m ORDER BY m.created_at, m.sha256"))


def in_use(db: sqlite_utils.Database, sha256: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT id FROM announcements WHERE media_sha256=? ORDER BY id", [sha256])]


def remove(db: sqlite_utils.Database, data_dir: str | os.PathLike, sha256: str) -> dict:
    """Delete one file and its renditions; refused while a slide (ended ones too) still uses it."""
    row = get(db, sha256)
    if row is None:
        raise MediaError(f"no media file {sha256!r}; see `congso media list`", "Không có tệp này.")
    users = in_use(db, sha256)
    if users:
        raise MediaError(f"{sha256[:12]} is used by {', '.join(users)}: remove those announcements first",
                         "Tệp đang được thông báo dùng, chưa xoá được.")
    gone = renditions(db, sha256)
    with db.conn:
        db.conn.execute("DELETE FROM media_renditions WHERE source_sha256=?", (sha256,))
        db.conn.execute("DELETE FROM media WHERE sha256=?", (sha256,))
    for sha in [sha256] + [r["sha256"] for r in gone]:
        (media_dir(data_dir) / sha).unlink(missing_ok=True)
    return row


def release(db: sqlite_utils.Database, data_dir: str | os.PathLike, sha256: str | None) -> bool:
    """After a slide dropped ``sha256`` (removed, or given another file): delete the file if no slide uses it now."""
    if not sha256 or get(db, sha256) is None or in_use(db, sha256):
        return False
    try:
        remove(db, data_dir, sha256)
    except MediaError:
        return False
    return True


def prune_unused(db: sqlite_utils.Database, data_dir: str | os.PathLike, now: datetime,
                 older_than_s: int = 3600) -> list[dict]:
    """Remove the files no announcement uses (stored more than ``older_than_s`` ago: an
    upload whose slide is being saved this moment is left alone); the rows removed."""
    cutoff = datetime.fromtimestamp(now.timestamp() - older_than_s, now.tzinfo).isoformat(timespec="seconds")
    unused = [r["sha256"] for r in db.query(
        "SELECT sha256 FROM media m WHERE created_at < ? AND NOT EXISTS"
        " (SELECT 1 FROM announcements a WHERE a.media_sha256=m.sha256)", [cutoff])]
    removed = []
    for sha in unused:
        try:
            removed.append(remove(db, data_dir, sha))
        except MediaError:
            continue  # taken into use meanwhile
    # Temporary files left by a crash mid-upload (never a row) go too.
    for tmp in media_dir(data_dir).glob(".upload-*"):
        try:
            if tmp.stat().st_mtime < now.timestamp() - older_than_s:
                tmp.unlink()
        except OSError:
            pass
    return removed
