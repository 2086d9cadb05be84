"""Backups of the gateway database, and putting one back.

``backup`` copies the live database with SQLite's online backup API in one
step: one read transaction, so the copy is the database as it was at one
commit while ingest goes on (WAL: writers are not blocked). The copy is
checked (integrity, a congso gateway schema this congso knows) before it
takes its final name, and only the newest ``keep`` copies are kept.

``restore`` checks a copy the same way and puts it in place with a rename,
keeping the file it replaces beside it. It refuses while a gateway runs:
``congso gateway run`` holds ``<data dir>/gateway.lock`` (see
``run_lock``). After a restore the gateway asks every node for the events
it lacks (``resend.py``), which the nodes still keep.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..protocol import clock
from ..protocol.settings import Settings
from . import schema

NAME_RE = re.compile(r"^gateway-(?P<site>[a-z0-9-]+)-(?P<stamp>\d{8}-\d{6})\.sqlite$")
PARTIAL = ".partial"
LOCK_NAME = "gateway.lock"
# Tables every gateway database has had since 0.1.0.
REQUIRED_TABLES = ("attendance_events", "rating_events", "nodes")


class BackupError(RuntimeError):
    """A backup or restore that could not be done; the message says why and what to do."""


class GatewayRunning(BackupError):
    """The gateway holds its lock: restoring under it would lose what it writes."""


@dataclass
class CopyInfo:
    path: Path
    migrations: list[str]
    attendance: int
    ratings: int
    size: int

    def describe(self) -> str:
        last = self.migrations[-1] if self.migrations else "none"
        return (f"{self.path}: {self.size / 1e6:.1f} MB, schema {last} ({len(self.migrations)} migrations), "
                f"{self.attendance} attendance and {self.ratings} rating events")


@dataclass
class BackupResult:
    copy: CopyInfo
    removed: list[Path] = field(default_factory=list)
    on_data_card: bool = False


@dataclass
class RestoreResult:
    copy: CopyInfo
    replaced: Path | None


def _db_path(settings: Settings) -> Path:
    from .service import db_path  # the one home of the path; service imports this module

    return db_path(settings)


# -- the copy's check -----------------------------------------------------------------
def check_copy(conn: sqlite3.Connection, path: Path) -> CopyInfo:
    """Integrity, and that it is a congso gateway database whose migrations this congso knows."""
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
        if problems != ["ok"]:
            raise BackupError(f"{path} fails SQLite's integrity check ({'; '.join(problems[:3])})")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        if missing:
            raise BackupError(f"{path} is not a congso gateway database (no {', '.join(missing)} table)")
        migrations = schema.applied(conn)
        if not migrations:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            migrations = [m.name for m in schema.RELEASE_0_1_0[:version]]
        known = [m.name for m in schema.MIGRATIONS]
        unknown = [m for m in migrations if m not in known]
        if unknown:
            raise BackupError(f"{path} was written by a newer congso (migrations {', '.join(unknown)}): upgrade congso first")
        attendance = conn.execute("SELECT count(*) FROM attendance_events").fetchone()[0]
        ratings = conn.execute("SELECT count(*) FROM rating_events").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise BackupError(f"{path} is not a readable SQLite database ({e})") from None
    return CopyInfo(path, migrations, attendance, ratings, path.stat().st_size if path.exists() else 0)


# -- backup ---------------------------------------------------------------------------
def backup_dir(settings: Settings, given: str | os.PathLike | None) -> tuple[Path, bool]:
    """The directory to write into, and whether it is the default one on the data card."""
    chosen = given or settings.backup.dir
    if not chosen:
        default = settings.data_dir / "backups"
        default.mkdir(mode=0o750, parents=True, exist_ok=True)
        return default, True
    path = Path(chosen)
    # Never created: an unmounted USB stick's mount point must not fill the SD card.
    if not path.is_dir():
        raise BackupError(f"backup directory {path} does not exist or is not a directory: is the USB stick mounted? "
                          "(mount it, or set [backup] dir / --dir to a directory that exists)")
    if not os.access(path, os.W_OK | os.X_OK):
        raise BackupError(f"backup directory {path} is not writable by this user (the gateway runs as 'congso')")
    return path, False


def _name(directory: Path, site: str, tz: str, now: datetime | None) -> Path:
    # Two copies within one second: the second waits for the next, so that
    # names sort as the copies were made (`ls` shows them in order).
    while True:
        stamp = (now or clock.now(tz)).strftime("%Y%m%d-%H%M%S")
        path = directory / f"gateway-{site}-{stamp}.sqlite"
        if not (path.exists() or path.with_name(path.name + PARTIAL).exists()):
            return path
        if now is not None:
            raise BackupError(f"{path} exists already")
        time.sleep(1.0 - time.time() % 1.0 + 0.01)


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _full(e: BaseException) -> bool:
    return (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "full" in str(e).lower()


def backup(settings: Settings, directory: str | os.PathLike | None = None, keep: int | None = None,
           now: datetime | None = None) -> BackupResult:
    """Write a checked copy of the live database into the backup directory; keep the newest ``keep``."""
    keep = settings.backup.keep if keep is None else keep
    if keep < 1:
        raise BackupError(f"keep must be at least 1, got {keep}")
    source = _db_path(settings)
    if not source.exists():
        raise BackupError(f"no gateway database at {source}: nothing to back up (is [data] dir right?)")
    target_dir, on_card = backup_dir(settings, directory)
    site = settings.site.id
    src = sqlite3.connect(str(source), timeout=30)
    try:
        page_size, pages, free_pages = (src.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count", "freelist_count"))
        need = page_size * (pages - free_pages)
        room = shutil.disk_usage(target_dir).free
        if room < need + (1 << 20):
            raise BackupError(f"not enough room in {target_dir}: {room / 1e6:.1f} MB free, the copy needs about "
                              f"{need / 1e6:.1f} MB (free some space, use a bigger stick, or lower [backup] keep)")
        final = _name(target_dir, site, settings.site.timezone, now)
        partial = final.with_name(final.name + PARTIAL)
        try:
            dst = sqlite3.connect(str(partial))
            try:
                # pages=-1: all in one step, one read transaction, one consistent snapshot.
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
                info = check_copy(dst, partial)
            finally:
                dst.close()
            _fsync(partial)
            os.replace(partial, final)
            _fsync(target_dir, directory=True)
        except (sqlite3.Error, OSError) as e:
            _remove(partial)
            if _full(e):
                raise BackupError(f"{target_dir} is full: the copy did not fit and was removed ({e}); "
                                  "free some space, use a bigger stick, or lower [backup] keep") from None
            raise BackupError(f"could not write the backup in {target_dir}: {e}") from None
        except BackupError as e:
            _remove(partial)
            raise BackupError(f"the copy of {source} fails its check, so the database itself may be damaged ({e}); "
                              "nothing was written: run `congso gateway check-db`") from None
    finally:
        src.close()
    info.path, info.size = final, final.stat().st_size
    return BackupResult(info, rotate(target_dir, site, keep), on_card)


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-journal")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def copies(directory: Path, site: str) -> list[Path]:
    """This site's backups in ``directory``, oldest first (by the time in their names)."""
    found = []
    for p in directory.iterdir():
        m = NAME_RE.match(p.name)
        if m and m.group("site") == site:
            found.append((m.group("stamp"), p))
    return [p for _, p in sorted(found)]


def rotate(directory: Path, site: str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` copies (only files named like ours); return those deleted."""
    old = copies(directory, site)[:-keep]
    for p in old:
        p.unlink()
    # A copy cut short (power cut mid-backup) is never a backup.
    for p in directory.glob(f"gateway-{site}-*.sqlite{PARTIAL}"):
        if time.time() - p.stat().st_mtime > 3600:
            _remove(p)
    return old


# -- the gateway's lock ------------------------------------------------------------------
class RunLock:
    """``<data dir>/gateway.lock``, held (flock) by ``congso gateway run`` and by a restore.

    The kernel drops it when the process dies, so a crashed gateway never
    leaves a stale lock; the file holds the holder's pid for the message.
    """

    def __init__(self, data_dir: Path, holder: str = "gateway"):
        self.path = Path(data_dir) / LOCK_NAME
        self.holder = holder
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise GatewayRunning(f"a gateway is running on {self.path.parent} ({other}): stop it first "
                                 "(sudo systemctl stop congso-gateway), then try again") from None
        if os.geteuid() == 0:  # `sudo congso gateway restore`: the gateway (user congso) must open it after
            st = self.path.parent.stat()
            os.fchown(fd, st.st_uid, st.st_gid)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.holder} pid {os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# -- restore ---------------------------------------------------------------------------
def _open_copy(path: Path) -> sqlite3.Connection:
    # Read-write when we may (SQLite then recovers a -wal beside a plain copy
    # of gateway.sqlite), read-only on a read-only stick.
    try:
        conn = sqlite3.connect(str(path) if os.access(path.parent, os.W_OK) and os.access(path, os.W_OK)
                               else f"file:{path}?mode=ro", uri=True, timeout=10)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.DatabaseError as e:
        raise BackupError(f"{path} is not a readable SQLite database ({e}): use another copy") from None


def restore(settings: Settings, file: str | os.PathLike, now: datetime | None = None) -> RestoreResult:
    """Check ``file`` and make it the gateway database; the replaced one is kept as gateway.sqlite.replaced-<time>."""
    copy = Path(file)
    target = _db_path(settings)
    if not copy.is_file():
        raise BackupError(f"{copy} does not exist or is not a file")
    if target.exists() and copy.resolve() == target.resolve():
        raise BackupError(f"{copy} is the gateway database itself: give a backup copy")
    target.parent.mkdir(parents=True, exist_ok=True)
    with RunLock(target.parent, holder="restore"):
        staged = target.with_name(target.name + ".restoring")
        _remove(staged)
        src = _open_copy(copy)
        try:
            try:
                check_copy(src, copy)
            except BackupError as e:
                raise BackupError(f"{e}: nothing was changed; use another copy") from None
            dst = sqlite3.connect(str(staged))
            try:
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode=DELETE")
                info = check_copy(dst, staged)
            finally:
                dst.close()
            _fsync(staged)
        except (sqlite3.Error, OSError) as e:
            _remove(staged)
            if _full(e):
                raise BackupError(f"{target.parent} is full: free some space there first ({e})") from None
            raise BackupError(f"could not copy {copy} into {target.parent}: {e}") from None
        except BackupError:
            _remove(staged)
            raise
        finally:
            src.close()
        _same_owner(staged, target.parent)
        replaced = _set_aside(target, now or clock.now(settings.site.timezone)) if target.exists() else None
        os.replace(staged, target)  # atomic: the old file or the restored one, never neither
        _fsync(target.parent, directory=True)
    info.path = target
    return RestoreResult(info, replaced)


def _set_aside(target: Path, now: datetime) -> Path:
    """Keep the database being replaced, whole, under a new name (it still holds its inode)."""
    try:
        conn = sqlite3.connect(str(target), timeout=10)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # its last commits into the file itself
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # a broken database: its -wal goes aside with it
    aside = target.with_name(f"{target.name}.replaced-{now.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while aside.exists():
        n += 1
        aside = target.with_name(f"{target.name}.replaced-{now.strftime('%Y%m%d-%H%M%S')}-{n}")
    try:
        os.link(target, aside)
    except OSError:  # no hard links here: a rename, and for a moment no gateway.sqlite (the gateway is stopped)
        os.replace(target, aside)
    # Never leave the old -wal or -shm beside the restored file: SQLite would apply them to it.
    for suffix in ("-wal", "-shm"):
        side = target.with_name(target.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    return aside


def _same_owner(path: Path, directory: Path) -> None:
    # `sudo congso gateway restore`: the file must still belong to the gateway's user.
    if os.geteuid() == 0:
        st = directory.stat()
        os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, 0o640)
