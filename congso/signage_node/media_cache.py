"""The TV's on-disk cache of slide files, fetched from the gateway by SHA-256.

The retained announcements state carries only each slide's manifest (hash,
size, renditions); the bytes come from the console's web server,
``GET <media_url>/media/<sha256>``, as this node (HTTP Basic with its MQTT
user and password). Everything here runs on a thread of its own: the render
loop only asks ``path(sha256)``, a dictionary look-up.

A file is kept only after its SHA-256 matched: it is written to
``<sha256>.part``, hashed while it streams, and renamed to ``<sha256>``
(atomic). A mismatch is refused (never shown, never kept), logged once per
hash, counted and reported in health (``media: error`` and ``media_problem``).

At start the files already in ``<data_dir>/media/`` are trusted by their
name, not hashed again: the name is given only after a verified write and
the rename is atomic, so a file is whole or absent. Hashing a full cache at
every boot would cost a Pi's SD card minutes (1 GB at ~20 MB/s) before the
first slide, and the gateway is not needed to play what is here.

The cap (``[signage] media_cache_mb``): the least recently shown files go
first (a file's mtime is set when it is shown), never one the current
manifest needs. When what the manifest needs does not fit, the cache says
so in health rather than thrash.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

SHA_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 256 * 1024
RETRY_MIN_S = 2.0  # a fetch that failed (gateway away) is tried again after this, doubling ...
RETRY_MAX_S = 300.0  # ... up to this
REFUSED_RETRY_S = 600.0  # a file whose hash did not match: the gateway's copy may be fixed later
TIMEOUT_S = 30.0


class MediaError(RuntimeError):
    pass


class RefusedError(MediaError):
    """What the server sent is not the file asked for (its hash or its size): tried again only much later."""


def media_base_url(settings) -> str:
    """``[signage] media_url``, or the console on the MQTT host: http://<[mqtt] host>:<[web] port>."""
    url = str(settings.signage.media_url or "").strip().rstrip("/")
    if url:
        return url
    host = str(settings.mqtt.host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{int(settings.web.port)}"


def choose(media: dict, screen: tuple[int, int]) -> dict:
    """The file to play for ``screen``: the smallest rendition with width and
    height at least the screen's, else the largest, else the original.
    Returns ``{"sha256", "size"}`` of the choice."""
    sw, sh = screen
    renditions = [r for r in (media.get("renditions") or []) if isinstance(r, dict) and SHA_RE.match(str(r.get("sha256", "")))]
    if renditions:
        covering = [r for r in renditions if int(r.get("width") or 0) >= sw and int(r.get("height") or 0) >= sh]
        area = lambda r: int(r.get("width") or 0) * int(r.get("height") or 0)  # noqa: E731
        pick = min(covering, key=area) if covering else max(renditions, key=area)
        return {"sha256": pick["sha256"], "size": int(pick.get("size") or 0)}
    return {"sha256": str(media.get("sha256", "")), "size": int(media.get("size") or 0)}


class MediaCache:
    def __init__(self, directory: Path, base_url: str, username: str, password: str, cap_bytes: int,
                 ca_file: str = "", on_ready=None):
        self.dir = Path(directory)
        self.base_url = base_url.rstrip("/")
        self.cap_bytes = int(cap_bytes)
        self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")
        self._ssl = None
        if self.base_url.startswith("https:"):
            if ca_file and not Path(ca_file).is_file():
                raise ValueError(f"[mqtt] tls_ca {ca_file} does not exist: copy the office CA from the gateway "
                                 "(the media server's certificate is checked against it)")
            self._ssl = ssl.create_default_context(cafile=ca_file or None)
        handlers = [urllib.request.ProxyHandler({})]  # the office LAN: never through a proxy
        if self._ssl is not None:
            handlers.append(urllib.request.HTTPSHandler(context=self._ssl))
        self._opener = urllib.request.build_opener(*handlers)
        self._on_ready = on_ready
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._files: dict[str, int] = {}  # sha256 -> size, what is on disk
        self._wanted: dict[str, int] = {}  # sha256 -> expected size, what the manifest needs now
        self._retry_at: dict[str, float] = {}
        self._delay: dict[str, float] = {}
        self._refused_logged: set[str] = set()
        self.refused = 0  # files refused for their hash, since start
        self.fetched = 0
        self.last_problem: str | None = None  # the latest, cleared when a fetch succeeds and nothing else is wrong
        self._problems: dict[str, str] = {}  # sha256 -> what went wrong with it
        self._thread: threading.Thread | None = None
        self._scan()

    # -- what the render loop asks -------------------------------------------------------
    def path(self, sha256: str) -> Path | None:
        with self._lock:
            return self.dir / sha256 if sha256 in self._files else None

    def touch(self, sha256: str) -> None:
        """This file was just shown: the last to be evicted."""
        try:
            os.utime(self.dir / sha256)
        except OSError:
            pass

    def want(self, files: dict[str, int]) -> None:
        """The files the current manifest needs (sha256 -> size); missing ones are fetched."""
        files = {k: v for k, v in files.items() if SHA_RE.match(k)}
        with self._lock:
            changed = files != self._wanted
            self._wanted = dict(files)
            for sha in list(self._problems):
                if sha not in files:
                    del self._problems[sha]
        if changed:
            self._wake.set()

    @property
    def status(self) -> str:
        with self._lock:
            return "error" if self._problems else "ok"

    def problem(self) -> str | None:
        with self._lock:
            return next(iter(self._problems.values()), None) if self._problems else None

    def summary(self) -> dict:
        with self._lock:
            return {"files": len(self._files), "bytes": sum(self._files.values()), "refused": self.refused,
                    "missing": sorted(set(self._wanted) - set(self._files))}

    # -- the fetcher -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="media", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.fetch_missing()
            except Exception:  # never kill the thread: log and go on
                log.exception("media cache: unexpected error")
                wait = RETRY_MAX_S
            self._wake.wait(wait)
            self._wake.clear()

    def fetch_missing(self) -> float:
        """Fetch what is wanted and not here; returns seconds until the next retry is due."""
        with self._lock:
            todo = [(sha, size) for sha, size in self._wanted.items() if sha not in self._files]
        now = time.monotonic()
        next_due = RETRY_MAX_S
        for sha, size in todo:
            if self._stop.is_set():
                break
            due = self._retry_at.get(sha, 0.0)
            if due > now:
                next_due = min(next_due, due - now)
                continue
            if not self._make_room(size):
                self._note(sha, f"the cache ([signage] media_cache_mb = {self.cap_bytes // 2**20}) is too small "
                                f"for the slides now shown; raise it")
                self._retry_at[sha] = now + RETRY_MAX_S
                continue
            try:
                self._fetch(sha, size)
            except MediaError as e:
                delay = min(RETRY_MAX_S, self._delay.get(sha, RETRY_MIN_S / 2) * 2)
                if isinstance(e, RefusedError):  # not "Connection refused": that is a server not up yet
                    delay = REFUSED_RETRY_S
                self._delay[sha] = delay
                self._retry_at[sha] = time.monotonic() + delay
                next_due = min(next_due, delay)
                self._note(sha, str(e))
                continue
            self._delay.pop(sha, None)
            self._retry_at.pop(sha, None)
            with self._lock:
                self._problems.pop(sha, None)
            if self._on_ready is not None:
                self._on_ready(sha)
        return max(0.2, next_due)

    def _note(self, sha: str, problem: str) -> None:
        with self._lock:
            first = self._problems.get(sha) != problem
            self._problems[sha] = problem
            self.last_problem = problem
        if first:
            log.warning("media %s: %s", sha[:12], problem)

    def _fetch(self, sha: str, expected_size: int) -> None:
        url = f"{self.base_url}/media/{sha}"
        req = urllib.request.Request(url, headers={"Authorization": self._auth, "User-Agent": "congso-signage"})
        part = self.dir / f"{sha}.part"
        self.dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        got = 0
        # Never more than the manifest's size (plus a margin for a manifest without one): a
        # server that streams forever does not fill the card.
        limit = expected_size if expected_size > 0 else self.cap_bytes
        try:
            with self._opener.open(req, timeout=TIMEOUT_S) as r, open(part, "wb") as out:
                while True:
                    chunk = r.read(CHUNK)
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > limit:
                        raise RefusedError(f"refused: {url} sent more than the {limit} bytes the manifest gives")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except urllib.error.HTTPError as e:
            part.unlink(missing_ok=True)
            if e.code == 401:
                raise MediaError(f"{url}: 401, the media server refused this node's user and password "
                                 "([mqtt] username/password must be the node's broker login)") from None
            raise MediaError(f"{url}: HTTP {e.code} {e.reason}") from None
        except MediaError:
            part.unlink(missing_ok=True)
            self._count_refused(sha)
            raise
        except (OSError, ValueError) as e:
            part.unlink(missing_ok=True)
            raise MediaError(f"{url}: {getattr(e, 'reason', e)} (is `congso web run` up? [signage] media_url)") from None
        if digest.hexdigest() != sha:
            part.unlink(missing_ok=True)
            self._count_refused(sha)
            raise RefusedError(f"refused: what {url} sent has SHA-256 {digest.hexdigest()[:12]}…, not the one asked "
                             "for (changed on the way or on the server); not shown, not kept")
        os.replace(part, self.dir / sha)
        with self._lock:
            self._files[sha] = got
        self.fetched += 1
        log.info("media %s fetched (%d bytes)", sha[:12], got)

    def _count_refused(self, sha: str) -> None:
        with self._lock:
            self.refused += 1

    # -- disk -------------------------------------------------------------------------------
    def _scan(self) -> None:
        """What a previous run left: verified files (named by their hash); half-written ones go."""
        try:
            entries = list(self.dir.iterdir())
        except FileNotFoundError:
            return
        for p in entries:
            if p.name.endswith(".part"):
                p.unlink(missing_ok=True)
            elif SHA_RE.match(p.name):
                try:
                    self._files[p.name] = p.stat().st_size
                except OSError:
                    pass
        if self._files:
            log.info("media cache: %d files (%.1f MB) kept from before", len(self._files), sum(self._files.values()) / 1e6)

    def _make_room(self, incoming: int) -> bool:
        """Evict the least recently shown files the manifest does not need until ``incoming`` fits."""
        with self._lock:
            total = sum(self._files.values())
            if total + incoming <= self.cap_bytes:
                return True
            candidates = [sha for sha in self._files if sha not in self._wanted]
        def shown_at(sha):
            try:
                return (self.dir / sha).stat().st_mtime
            except OSError:
                return 0.0
        for sha in sorted(candidates, key=shown_at):
            with self._lock:
                size = self._files.pop(sha, 0)
                total -= size
            (self.dir / sha).unlink(missing_ok=True)
            log.info("media %s evicted (cache cap %d MB)", sha[:12], self.cap_bytes // 2**20)
            if total + incoming <= self.cap_bytes:
                return True
        return total + incoming <= self.cap_bytes
