"""Announcements for the waiting-hall TVs: notices and online-service slides.

Each has a title, a body, optionally a link shown as a QR code (the
province's online public-service portal, a form to download) and a
validity window. The builder publishes those valid now or later (ended
ones drop off; the TV checks the window itself too, as time passes while
it is offline). ``valid_from``/``valid_until`` are RFC 3339 with the
office's offset; a date alone means from its start / until its end.

A slide may also carry a picture or a video (``media_sha256``, a file
stored by ``media.add_file``; its body may then be empty), a ``schedule``
(``vocab/schedule.py``: weekdays, hours, a date range; the TV plays it
only then) and its own ``seconds`` on screen (null: ``[signage] slide_s``;
a video plays to its end). ``board`` publishes the file's manifest, never
its bytes: the TV fetches those by hash from the console's web server.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from urllib.parse import urlparse

import sqlite_utils

from ..vocab.announcements import has_ended, is_current  # noqa: F401 (is_current: the CLI's list)
from ..vocab.dossiers import as_datetime
from ..vocab import text as vocab_text
from ..vocab.schedule import Schedule, ScheduleError
from ..vocab.text import nfc
from . import media as media_mod
from . import state
from .dossiers import DossierError, fit_items, parse_when

MAX_TITLE = 200
MAX_BODY = 2000
MAX_URL = 500  # a QR code of a longer link is too dense to scan off a TV
MIN_SECONDS, MAX_SECONDS = 1, 3600
PUBLISHED = ("id", "title", "body", "qr_url", "valid_from", "valid_until", "schedule", "seconds")
_KEEP = object()  # update(): a field not given keeps its stored value


class AnnouncementError(ValueError):
    pass


def _nfc(text) -> str:
    return nfc(str(text or "")).strip()


def _moment(text: str | None, tz: str, what: str, end: bool) -> str | None:
    if not text:
        return None
    try:
        value = parse_when(text, tz)
    except DossierError as e:
        raise AnnouncementError(f"{what}: {e}") from None
    if len(value) == 10:  # a date: from its first moment / until its last
        from zoneinfo import ZoneInfo

        at = as_datetime(value, ZoneInfo(tz), end_of_day=end)
        value = (at - timedelta(seconds=1) if end else at).isoformat(timespec="seconds")
    return value


def _schedule(text: str | None) -> str | None:
    if text is None or not str(text).strip():
        return None
    try:
        return Schedule.parse(nfc(str(text)), "--schedule").text or None
    except ScheduleError as e:
        raise AnnouncementError(f"{e} (e.g. --schedule \"mon-fri 07:30-11:30,13:30-17:00\", or 2026-12-05..2026-12-06)") from None


def _seconds(value) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        n = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise AnnouncementError(f"--seconds must be a number of seconds, {MIN_SECONDS} to {MAX_SECONDS}, got {value!r}") from None
    if not MIN_SECONDS <= n <= MAX_SECONDS:
        raise AnnouncementError(f"--seconds must be {MIN_SECONDS} to {MAX_SECONDS}, got {value}")
    return int(n) if n == int(n) else n


def draft(*, title: str, body: str, tz: str, qr_url: str | None = None, valid_from: str | None = None,
          valid_until: str | None = None, item_id: str | None = None, media_sha256: str | None = None,
          schedule: str | None = None, seconds=None) -> dict:
    """An announcement checked as ``add`` checks it, stored nowhere (``add``, ``update``, the console's preview)."""
    try:
        title = vocab_text.clean(title, "title") or ""
        body = vocab_text.clean(body, "body", multiline=True) or ""
        qr_url = vocab_text.clean(qr_url, "qr-url")
    except vocab_text.TextError as e:
        raise AnnouncementError(str(e)) from None
    if not title:
        raise AnnouncementError("--title is empty")
    if len(title) > MAX_TITLE:
        raise AnnouncementError(f"--title is {len(title)} characters; at most {MAX_TITLE} fit on a TV")
    if len(body) > MAX_BODY:
        raise AnnouncementError(f"--body is {len(body)} characters; at most {MAX_BODY} (put the rest behind --qr-url)")
    if qr_url:
        parts = urlparse(qr_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AnnouncementError(f"--qr-url must be an http(s) link like https://dichvucong.gov.vn, got {qr_url!r}")
        if len(qr_url) > MAX_URL:
            raise AnnouncementError(f"--qr-url is {len(qr_url)} characters; at most {MAX_URL} make a QR code a phone reads off a TV")
    vf = _moment(valid_from, tz, "--from", end=False)
    vu = _moment(valid_until, tz, "--until", end=True)
    if vf and vu and datetime.fromisoformat(vu) <= datetime.fromisoformat(vf):
        raise AnnouncementError(f"--until {valid_until} is not after --from {valid_from}")
    if media_sha256 is not None and not media_mod.SHA256_RE.match(str(media_sha256)):
        raise AnnouncementError(f"media {media_sha256!r} is not a SHA-256 (64 lower-case hex); see `congso media list`")
    return {"id": item_id or "a-" + uuid.uuid4().hex[:8], "title": title, "body": body, "qr_url": qr_url,
            "valid_from": vf, "valid_until": vu, "media_sha256": media_sha256 or None, "schedule": _schedule(schedule),
            "seconds": _seconds(seconds)}


def _media_known(db: sqlite_utils.Database, item: dict) -> None:
    if item["media_sha256"] and media_mod.get(db, item["media_sha256"]) is None:
        raise AnnouncementError(f"no media file {item['media_sha256']}; upload it with --image or --video")


def add(db: sqlite_utils.Database, *, title: str, body: str, tz: str, now: datetime, qr_url: str | None = None,
        valid_from: str | None = None, valid_until: str | None = None, media_sha256: str | None = None,
        schedule: str | None = None, seconds=None) -> dict:
    item = draft(title=title, body=body, tz=tz, qr_url=qr_url, valid_from=valid_from, valid_until=valid_until,
                 media_sha256=media_sha256, schedule=schedule, seconds=seconds)
    _media_known(db, item)
    with db.conn:
        db["announcements"].insert({**item, "created_at": now.isoformat(timespec="seconds")})
    return item


def get(db: sqlite_utils.Database, item_id: str) -> dict | None:
    rows = list(db.query("SELECT * FROM announcements WHERE id=?", [item_id]))
    return rows[0] if rows else None


def update(db: sqlite_utils.Database, item_id: str, *, title: str, body: str, tz: str, qr_url: str | None = None,
           valid_from: str | None = None, valid_until: str | None = None, media_sha256=_KEEP, schedule=_KEEP,
           seconds=_KEEP) -> tuple[dict, dict]:
    """Change the fields of one announcement, checked as ``add`` checks them; (before, after).

    ``media_sha256``, ``schedule`` and ``seconds`` not given keep what is stored (None clears them).
    """
    before = get(db, item_id)
    if before is None:
        raise AnnouncementError(f"no announcement {item_id!r}; see `congso announce list`")
    kept = {k: before.get(k) if v is _KEEP else v
            for k, v in (("media_sha256", media_sha256), ("schedule", schedule), ("seconds", seconds))}
    item = draft(title=title, body=body, tz=tz, qr_url=qr_url, valid_from=valid_from, valid_until=valid_until,
                 item_id=item_id, **kept)
    _media_known(db, item)
    with db.conn:
        before = get(db, item_id)
        if before is None:
            raise AnnouncementError(f"no announcement {item_id!r}; see `congso announce list`")
        db.conn.execute("UPDATE announcements SET title=?, body=?, qr_url=?, valid_from=?, valid_until=?,"
                        " media_sha256=?, schedule=?, seconds=? WHERE id=?",
                        (item["title"], item["body"], item["qr_url"], item["valid_from"], item["valid_until"],
                         item["media_sha256"], item["schedule"], item["seconds"], item_id))
    return before, {**before, **item}


def ended(db: sqlite_utils.Database, now: datetime, limit: int, offset: int = 0) -> tuple[list[dict], int]:
    """Announcements whose window has closed, the latest first, one page of them; and how many there are.

    Times are stored with the office's offset, so RFC 3339 text in office time compares as time does.
    """
    at = now.isoformat(timespec="seconds")
    total = db.execute("SELECT count(*) FROM announcements WHERE valid_until < ?", [at]).fetchone()[0]
    rows = list(db.query("SELECT * FROM announcements WHERE valid_until < ? ORDER BY valid_until DESC, id LIMIT ? OFFSET ?",
                         [at, limit, offset]))
    return rows, total


def not_ended(db: sqlite_utils.Database, now: datetime) -> list[dict]:
    """Those shown now or later (what the builder publishes), in the order the TV shows them."""
    at = now.isoformat(timespec="seconds")
    return list(db.query("SELECT * FROM announcements WHERE valid_until IS NULL OR valid_until >= ?"
                         " ORDER BY coalesce(valid_from, created_at), id", [at]))


def remove(db: sqlite_utils.Database, item_id: str) -> dict:
    with db.conn:
        rows = list(db.query("SELECT * FROM announcements WHERE id=?", [item_id]))
        if not rows:
            raise AnnouncementError(f"no announcement {item_id!r}; see `congso announce list`")
        db.conn.execute("DELETE FROM announcements WHERE id=?", (item_id,))
    return rows[0]


def list_all(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT * FROM announcements ORDER BY coalesce(valid_from, created_at), id"))


def _schedule_over(r: dict, now: datetime) -> bool:
    """Its schedule's date range is behind us: it will never play again (an unreadable one is kept; the TV skips it)."""
    try:
        last = Schedule.parse(r.get("schedule")).last
    except ScheduleError:
        return False
    return last is not None and last < now.date()


def board(db: sqlite_utils.Database, now: datetime) -> dict:
    items = []
    for r in list_all(db):
        if has_ended(r, now) or _schedule_over(r, now):
            continue
        item = {k: r.get(k) for k in PUBLISHED}
        item["media"] = media_mod.manifest(db, r.get("media_sha256"))
        if r.get("media_sha256") and item["media"] is None:
            continue  # its file is gone: a picture slide without its picture is not shown
        items.append(item)
    kept, omitted = fit_items({}, "items", items)
    payload = {"items": kept}
    if omitted:
        payload["omitted"] = omitted
    return payload


def build(db: sqlite_utils.Database, ctx: state.Context) -> dict:
    return {"announcements": board(db, ctx.now)}


DOMAIN = state.Domain("announcements", builders=(build,))
