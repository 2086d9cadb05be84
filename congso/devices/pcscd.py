"""The PC/SC daemon, for the tests, ``congso demo`` and ``congso selftest``.

On a Pi, pcscd is Debian's (``pcscd.socket`` starts it on demand) and
congso only asks whether it answers. The tests and the demo need more: a
pcscd of their own that they can SIGKILL and start again, with the vpcd
driver's virtual readers in it (see ``virtualcard``).

Two machine-wide facts shape this module: pcscd's socket is always
``/run/pcscd/pcscd.comm`` (the daemon ignores ``PCSCLITE_CSOCK_NAME``), and
vpcd's ports are fixed by its reader.conf entry. So only one such pcscd can
run on a machine, and every user of it holds ``vpcd_lock()``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from smartcard import scard

log = logging.getLogger(__name__)

RUN_DIR = Path("/run/pcscd")
SOCKET = RUN_DIR / "pcscd.comm"
PID_FILE = RUN_DIR / "pcscd.pid"
CONFIG_DIR = Path("/etc/reader.conf.d")
DRIVER_DIRS = (Path("/usr/lib/pcsc/drivers/serial"), Path("/usr/local/lib/pcsc/drivers/serial"))
VPCD_DRIVER = "libifdvpcd.so"
LOCK_PATH = Path(tempfile.gettempdir()) / "congso-vpcd.lock"
# "<pid> <start time>" of the pcscd that a PcscDaemon started and has not
# stopped: a run that died (pytest killed, a demo's terminal closed) leaves
# its pcscd behind, and the next run may stop that one, and only that one.
OWNED_PATH = Path(tempfile.gettempdir()) / "congso-pcscd.owned"


class PcscdError(RuntimeError):
    pass


def find_pcscd() -> str:
    """Path of the pcscd binary (Debian puts it in /usr/sbin, often not on PATH)."""
    found = shutil.which("pcscd") or shutil.which("pcscd", path="/usr/sbin:/usr/local/sbin:/sbin")
    if not found:
        raise PcscdError("pcscd not found; apt install pcscd")
    return found


def is_running() -> bool:
    """Does a pcscd answer? Asked through a fresh PC/SC context.

    A context is what every client needs, so this is the honest test; a
    stale ``pcscd.comm`` left by a killed daemon refuses the connection and
    so reads as not running.
    """
    hresult, hcontext = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    scard.SCardReleaseContext(hcontext)
    return True


def list_readers() -> list[str]:
    """Reader names pcscd lists now ([] when it has none or is not running)."""
    hresult, hcontext = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return []
    try:
        hresult, readers = scard.SCardListReaders(hcontext, [])
        return list(readers) if hresult == scard.SCARD_S_SUCCESS else []
    finally:
        scard.SCardReleaseContext(hcontext)


def vpcd_driver() -> Path | None:
    for d in DRIVER_DIRS:
        if (d / VPCD_DRIVER).exists():
            return d / VPCD_DRIVER
    return None


def _conf_entries(config_dir: Path) -> list[dict[str, str]]:
    """reader.conf entries (FRIENDLYNAME, DEVICENAME, LIBPATH, CHANNELID) in a directory."""
    entries: list[dict[str, str]] = []
    if not config_dir.is_dir():
        return entries
    for path in sorted(config_dir.iterdir()):
        if not path.is_file():
            continue
        current: dict[str, str] = {}
        for line in path.read_text(errors="replace").splitlines():
            m = re.match(r"\s*(FRIENDLYNAME|DEVICENAME|LIBPATH|CHANNELID)\s+(.+?)\s*$", line)
            if not m:
                continue
            key, value = m.group(1), m.group(2).strip('"')
            if key == "FRIENDLYNAME" and current:
                entries.append(current)
                current = {}
            current[key] = value
        if current:
            entries.append(current)
    return entries


def vpcd_reader_names(config_dir: Path = CONFIG_DIR) -> list[str]:
    """FRIENDLYNAMEs of the vpcd readers declared in a reader.conf.d."""
    return [e.get("FRIENDLYNAME", "") for e in _conf_entries(Path(config_dir)) if "vpcd" in e.get("LIBPATH", "")]


def write_vpcd_config(config_dir: str | os.PathLike, name: str = "Virtual PCD", port: int = 35963) -> Path:
    """A reader.conf.d of one vpcd reader, for ``PcscDaemon(config_dir=...)``.

    vpcd makes two slots, "<name> 00 00" on ``port`` and "<name> 00 01" on
    ``port + 1``.
    """
    driver = vpcd_driver()
    if driver is None:
        raise PcscdError(f"vpcd driver {VPCD_DRIVER} not found; apt install vsmartcard-vpcd")
    config_dir = Path(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "vpcd"
    path.write_text(
        f'FRIENDLYNAME "{name}"\nDEVICENAME   /dev/null:0x{port:04X}\n'
        f"LIBPATH      {driver}\nCHANNELID    0x{port:04X}\n"
    )
    return path


def _live_pcscd_pid() -> int | None:
    """The pid in pcscd.pid if that process is a live (not zombie) pcscd."""
    try:
        # pcscd writes "1234\n" and a NUL byte.
        m = re.match(r"\s*(\d+)", PID_FILE.read_text(errors="replace"))
        if not m:
            return None
        pid = int(m.group(1))
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ...": a SIGKILLed pcscd its parent has not reaped yet
    # is a zombie ("Z") and still holds its pid.
    m = re.match(r"\d+ \((.*)\) (\S)", stat)
    if m and m.group(1) == "pcscd" and m.group(2) not in "ZX":
        return pid
    return None


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/<pid>/stat): a pid alone may be reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _remember_ours(pid: int) -> None:
    with contextlib.suppress(OSError):
        OWNED_PATH.write_text(f"{pid} {_start_time(pid)}\n")


def _forget_ours(pid: int) -> None:
    with contextlib.suppress(OSError, ValueError):
        if int(OWNED_PATH.read_text().split()[0]) == pid:
            OWNED_PATH.unlink()


def left_by_us(pid: int) -> bool:
    """Was ``pid`` started by a PcscDaemon (of a run that did not stop it)?"""
    try:
        owned_pid, started = OWNED_PATH.read_text().split()
    except (OSError, ValueError):
        return False
    return int(owned_pid) == pid and started == _start_time(pid)


def foreign_pcscd() -> int | str | None:
    """A running pcscd that no PcscDaemon started: its pid ("unknown" when
    only its socket answers, e.g. systemd's pcscd.socket); None when none
    runs or the one running was left by an earlier run of ours."""
    if not is_running():
        return None
    pid = _live_pcscd_pid()
    if pid is not None and left_by_us(pid):
        return None
    return pid or "unknown"


def _stop_left_by_us(timeout: float) -> None:
    """SIGTERM a pcscd that an earlier run started and never stopped; never another one."""
    pid = _live_pcscd_pid()
    if pid is None or not left_by_us(pid):
        return
    log.warning("stopping pcscd pid %d, left running by an earlier run of congso", pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _live_pcscd_pid() == pid:
        time.sleep(0.05)
    _forget_ours(pid)


def _clean_stale_files() -> None:
    """Remove pcscd.comm and pcscd.pid left behind by a killed pcscd.

    pcscd cleans up after a dead predecessor itself, except when the pid in
    pcscd.pid names any process that exists: an unreaped zombie pcscd, or
    an unrelated process that got the pid since. Then it refuses to start
    ("Another pcscd seems to be running"). We check that the pid is a live
    pcscd.
    """
    if _live_pcscd_pid() is not None:
        return
    for path in (SOCKET, PID_FILE):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class PcscDaemon:
    """A pcscd of our own, in the foreground, its log in a file."""

    def __init__(self, config_dir: str | os.PathLike | None = None, log_path: str | os.PathLike | None = None):
        self.config_dir = Path(config_dir) if config_dir else None
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / "congso-pcscd.log"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running() else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def expected_readers(self) -> list[str]:
        return vpcd_reader_names(self.config_dir or CONFIG_DIR)

    def start(self, timeout: float = 10.0) -> "PcscDaemon":
        """Start pcscd; return once pyscard lists its vpcd readers.

        Another pcscd already running is an error: it is never stopped (it
        is the system's, or a developer's), except one that a PcscDaemon of
        an earlier run started and never stopped (``left_by_us``).
        """
        if self.running():
            return self
        if is_running():
            _stop_left_by_us(timeout)
        if is_running():
            other = _live_pcscd_pid()
            raise PcscdError(
                f"another pcscd is already running (pid {other or 'unknown'}); only one can own {SOCKET}. "
                "Stop it (systemctl stop pcscd.socket pcscd) or reuse it (ensure_pcscd)."
            )
        _clean_stale_files()
        args = [find_pcscd(), "--foreground", "--info"]
        if self.config_dir:
            args += ["--config", str(self.config_dir)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- {' '.join(args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         process_group=0)  # a terminal's Ctrl-C is for us, not for it
        _remember_ours(self.proc.pid)
        want = self.expected_readers()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PcscdError(f"pcscd exited with status {self.proc.returncode}:\n{self.log_tail()}")
            if is_running():
                found = list_readers()
                if all(any(r.startswith(name) for r in found) for name in want):
                    return self
            time.sleep(0.02)
        self.kill()
        raise PcscdError(f"pcscd did not list the readers {want} within {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc is not None:
            _forget_ours(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL, as a crash: pcscd.comm and pcscd.pid stay behind."""
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()  # reap it, or the zombie blocks the next start
            _forget_ours(self.proc.pid)

    def restart(self, kill: bool = False, timeout: float = 10.0) -> "PcscDaemon":
        self.kill() if kill else self.stop()
        return self.start(timeout)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> "PcscDaemon":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def ensure_pcscd(config_dir: str | os.PathLike | None = None, log_path: str | os.PathLike | None = None,
                 timeout: float = 10.0) -> PcscDaemon | None:
    """Reuse a pcscd that answers, or start one.

    Returns the started daemon (the caller stops it), or None when an
    existing pcscd was reused (not ours to stop).
    """
    if is_running():
        return None
    return PcscDaemon(config_dir, log_path).start(timeout)


# vpcd_lock is re-entrant within a process: flock() locks belong to an open
# file, so a second open() in the same process would wait for itself.
_lock_guard = threading.Lock()
_lock_depth = 0
_lock_file = None


@contextlib.contextmanager
def vpcd_lock(timeout: float = 300.0, path: str | os.PathLike = LOCK_PATH) -> Iterator[None]:
    """Hold the machine-wide pcscd/vpcd lock (several pytest runs at once).

    The lock is an flock() on a fixed file, so the kernel drops it when its
    holder dies, however it dies.
    """
    global _lock_depth, _lock_file
    with _lock_guard:
        if _lock_depth == 0:
            f = open(path, "a+")
            with contextlib.suppress(OSError):
                os.chmod(path, 0o666)  # other users' runs must be able to lock it too
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        f.seek(0)
                        holder = f.read().strip() or "unknown"
                        f.close()
                        raise TimeoutError(f"{path} still locked after {timeout} s (holder: {holder})") from None
                    time.sleep(0.1)
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}\n")
            f.flush()
            _lock_file = f
        _lock_depth += 1
    try:
        yield
    finally:
        with _lock_guard:
            _lock_depth -= 1
            if _lock_depth == 0 and _lock_file is not None:
                _lock_file.truncate(0)
                fcntl.flock(_lock_file, fcntl.LOCK_UN)
                _lock_file.close()
                _lock_file = None
