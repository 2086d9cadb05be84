"""Slides' pictures and clips over HTTP, for the hall TVs (and the console's own thumbnails).

- ``GET /media/<sha256>``: for the TVs. HTTP Basic, the user a node id and
  the password that node's MQTT password, checked against the broker's
  hashed password file (``[web] broker_passwd``; Mosquitto's ``$7$``
  PBKDF2-HMAC-SHA512, or the older ``$6$``). A node only: the ``gateway``
  user and the console's own web users are refused. Wrong or missing: 401
  (a wrong password is logged at most once a minute per node); not an
  original or a rendition we hold: 404; else 200 with the bytes, the file's
  type, ``ETag: "<sha256>"`` and ``Cache-Control: private, max-age=31536000,
  immutable`` (a file named by its content never changes). Ranges work
  (Starlette's ``FileResponse``).
- ``GET /announcements/media/<sha256>``: the same file for a logged-in user
  with ``announcements.view`` (the list's thumbnails).

The TV checks the SHA-256 of what it got; this side never trusts a path
from the request: only 64 lower-case hex is looked up, in the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import threading
import time
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

from ...gateway import media
from ...protocol.topics import GATEWAY_ID
from .. import access, page

log = logging.getLogger(__name__)
router = APIRouter()

REALM = 'Basic realm="congso media"'
CACHE = "private, max-age=31536000, immutable"
LOG_EVERY_S = 60


class PasswdFile:
    """The broker's ``user:hash`` lines, read again when the file changes (a node added)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._users: dict[str, str] = {}

    def users(self, path: Path) -> dict[str, str]:
        st = path.stat()  # OSError: the caller answers 503
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            if key != self._key:
                users = {}
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    user, sep, hashed = line.strip().partition(":")
                    if sep and user and not user.startswith("#"):
                        users[user] = hashed
                self._users, self._key = users, key
            return self._users


def check_password(password: str, hashed: str) -> bool:
    """A Mosquitto password hash: ``$7$<iterations>$<salt b64>$<hash b64>`` (PBKDF2-HMAC-SHA512) or ``$6$<salt>$<hash>``."""
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            iterations, salt, want = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=len(want))
        elif len(parts) == 4 and parts[1] == "6":
            salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(got, want)


_passwd = PasswdFile()
_last_logged: dict[str, float] = {}
_log_lock = threading.Lock()


def _log_refused(node: str, why: str, client: str) -> None:
    """At most one line a minute per node: a TV with a stale password retries often."""
    now = time.monotonic()
    with _log_lock:
        if now - _last_logged.get(node, -LOG_EVERY_S) < LOG_EVERY_S:
            return
        _last_logged[node] = now
        if len(_last_logged) > 1000:  # names come from the request: keep the table small
            _last_logged.clear()
    log.warning("media: refused %r from %s: %s (logged once a minute per node)", node[:64], client, why)


def _unauthorized() -> Response:
    return Response("log in as the node (HTTP Basic: node id and its MQTT password)\n", status_code=401,
                    headers={"WWW-Authenticate": REALM, "Cache-Control": "no-store"}, media_type="text/plain")


def _node_of(request: Request) -> str | Response:
    """The node id the request proved it is, or the response refusing it."""
    kind, _, token = (request.headers.get("authorization") or "").partition(" ")
    if kind.lower() != "basic" or not token:
        return _unauthorized()
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return _unauthorized()
    client = request.client.host if request.client else "?"
    if not sep or not user or user == GATEWAY_ID:
        _log_refused(user or "?", "not a node", client)
        return _unauthorized()
    path = Path(page.console(request).settings.web.broker_passwd)
    try:
        users = _passwd.users(path)
    except OSError as e:
        log.error("media: cannot read the broker's password file %s ([web] broker_passwd): %s", path, e.strerror)
        raise HTTPException(503, "the console cannot read the broker's password file ([web] broker_passwd)") from None
    hashed = users.get(user)
    if hashed is None or not check_password(password, hashed):
        _log_refused(user, "unknown node" if hashed is None else "wrong password", client)
        return _unauthorized()
    return user


def _file(request: Request, sha256: str) -> Response:
    found = media.lookup(page.db(request), sha256)
    path = media.file_path(page.console(request).settings.data_dir, sha256)
    if found is None or path is None or not path.is_file():
        raise HTTPException(404, "no such media file")
    etag = f'"{sha256}"'
    if etag in [t.strip() for t in (request.headers.get("if-none-match") or "").split(",")]:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE})
    return FileResponse(path, media_type=found["mime"], headers={"ETag": etag, "Cache-Control": CACHE})


@router.get("/media/{sha256}")
@access.public
def node_media(request: Request, sha256: str):
    who = _node_of(request)
    if isinstance(who, Response):
        return who
    return _file(request, sha256)


@router.get("/announcements/media/{sha256}")
@access.requires("announcements.view")
def console_media(request: Request, sha256: str):
    return _file(request, sha256)
