"""One process harness: a broker, a gateway, nodes; wait for a condition; stop.

The tests (``tests/conftest.py``), the benchmarks (``bench/*.py``) and
``congso demo`` all run the office the way the Pis do: a real Mosquitto
started from the config that ``congso broker config`` generates (passwords,
ACL) on a free loopback port, and ``python -m congso ...`` as real
processes, each with its output in a log file. This module is the one copy
of that.

Mosquitto started as root drops to the user ``mosquitto``, which must be able
to read its config, password file and ACL and write its persistence
directory. A checkout in ``/root`` or in a 0700 home directory is closed to
that user, so the broker's files always live in a private runtime directory
of their own (``runtime_dir``) that it can reach, never next to the caller's
files. A caller that keeps the broker between runs (the demo) gives a
``state_dir``: the credentials and the persistence file are copied in from
there before the start and back after the stop, together with the config
for the user to read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

from ..ops import broker as broker_ops
from ..protocol.topics import GATEWAY_ID

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 15.0
# What a kept broker carries from one run to the next (the rest is regenerated).
_KEPT = ("credentials.json", "data/mosquitto.db")
# What the user finds in the state directory after a run, to read.
_SHOWN = ("mosquitto.conf", "acl")


def mosquitto_cannot_enter(path: str | os.PathLike) -> Path | None:
    """The first directory on the way to ``path`` that other users (so the
    user 'mosquitto') cannot enter, or None when the way is open."""
    path = Path(path).resolve()
    for p in [path, *path.parents]:
        if p.exists() and not os.stat(p).st_mode & stat.S_IXOTH:
            return p
    return None


def runtime_dir(prefix: str = "congso-") -> Path:
    """A new private directory that the user 'mosquitto' can enter (0755).

    In the temporary directory when the way there is open (``TMPDIR`` may
    point into a 0700 home), else in /tmp. The files inside keep their own
    modes: the password file and credentials stay 0600.
    """
    for base in dict.fromkeys([tempfile.gettempdir(), "/tmp"]):
        if Path(base).is_dir() and mosquitto_cannot_enter(base) is None:
            break
    else:
        raise broker_ops.BrokerConfigError("no temporary directory that the user 'mosquitto' can enter (not even /tmp)")
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    os.chmod(path, 0o755)
    return path


class Broker:
    """A generated config and a running Mosquitto, on a free loopback port.

    ``state_dir``: keep the credentials and the persisted sessions there
    between runs (and a copy of the config to read); without it everything
    goes with ``cleanup()``. ``log_path``: where Mosquitto's output goes
    (default in the runtime directory).
    """

    def __init__(self, site: str, nodes: Iterable[str], *, host: str = HOST, port: int | None = None,
                 state_dir: str | os.PathLike | None = None, log_path: str | os.PathLike | None = None,
                 prefix: str = "congso-broker-", **generate_options):
        self.site = site
        self.host = host
        self.dir = runtime_dir(prefix)
        self.conf = self.dir / "conf"
        self.state_dir = Path(state_dir).resolve() if state_dir else None
        self._copy_kept(self.state_dir, self.conf)
        self._nodes = list(nodes)
        self._options = generate_options
        self._own_port = port is None
        self._started = False
        self._log_path = Path(log_path) if log_path is not None else None
        self._configure(port or broker_ops.free_port(host))
        self._save_state()  # the credentials are there for the user from the start

    def _configure(self, port: int) -> None:
        self.port = port
        self.credentials = broker_ops.generate(self.conf, self.site, self._nodes, port=port, bind=self.host,
                                               **self._options)
        self.process = broker_ops.BrokerProcess(self.conf, port, self.host)
        if self._log_path is not None:
            self.process.log_path = self._log_path

    @staticmethod
    def _copy_kept(src: Path | None, dst: Path) -> None:
        if src is None:
            return
        for name in _KEPT:
            if (src / name).is_file():
                (dst / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src / name, dst / name)

    def _save_state(self) -> None:
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for name in (*_KEPT, *_SHOWN):
            src = self.conf / name
            if src.is_file():
                dst = self.state_dir / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                # The caller's own copies, private: the config may hold a
                # bridge password, the credentials are plain.
                os.chmod(dst, 0o600)

    @property
    def proc(self) -> subprocess.Popen | None:
        return self.process.proc

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def start(self) -> "Broker":
        """Start Mosquitto; a restart (after ``stop`` or ``kill``) keeps the port."""
        for attempt in range(3):
            try:
                self.process.start()
                self._started = True
                return self
            except broker_ops.BrokerConfigError as e:
                # A free port is only free when it was asked for: a busy
                # machine's outgoing connections may take it meanwhile. Only
                # before the first start: clients know the port after it.
                if self._started or not self._own_port or "Address already in use" not in str(e) or attempt == 2:
                    raise
                self._configure(broker_ops.free_port(self.host))
        return self

    def running(self) -> bool:
        return self.process.running()

    def stop(self) -> None:
        self.process.stop()
        self._save_state()

    def kill(self) -> None:
        self.process.kill()

    def cleanup(self) -> None:
        """Remove the runtime directory; a kept broker is stopped first (its
        persistence file written and saved), any other one killed."""
        if self.state_dir is not None and self.process.running():
            self.stop()
        self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def env(self, user: str, data_dir: str | os.PathLike | None = None, **extra) -> dict[str, str]:
        """CONGSO_* variables for a program that logs in as ``user``."""
        env = {
            "CONGSO_SITE_ID": self.site,
            "CONGSO_MQTT_HOST": self.host,
            "CONGSO_MQTT_PORT": str(self.port),
            "CONGSO_MQTT_USERNAME": user,
            "CONGSO_MQTT_PASSWORD": self.credentials[user],
        }
        if user != GATEWAY_ID:
            env["CONGSO_NODE_ID"] = user
        if data_dir is not None:
            env["CONGSO_DATA_DIR"] = str(data_dir)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


class Proc:
    """``python -m congso ARGS`` as a real process, its output in files.

    stderr goes to ``log_path``; stdout to ``log_path`` with the suffix
    ``.out`` (``stdout="file"``, read with ``readline_until``), into the log
    too (``"log"``), to a text pipe (``"pipe"``) or nowhere (``"null"``).
    A file, not a pipe, by default: a pipe nobody drains would block the
    program once 64 KiB of output are waiting. ``clean_env`` drops the
    caller's CONGSO_* variables; ``console`` gives it a stdin pipe
    (``send``); ``own_group`` puts it in its own process group, so that a
    Ctrl-C in the terminal reaches only the program that stops it in order.
    """

    def __init__(self, args: list[str], env: dict[str, str], log_path: str | os.PathLike, *, name: str | None = None,
                 stdout: str = "file", clean_env: bool = True, console: bool = False, own_group: bool = False,
                 append: bool = True):
        self.args = list(args)
        self.name = name or args[0]
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not (clean_env and k.startswith("CONGSO_"))}
        base.update(env)
        base["PYTHONUNBUFFERED"] = "1"
        self.log = open(self.log_path, "ab" if append else "wb")
        self.out = self.reader = None
        self.out_path: Path | None = None
        if stdout == "file":
            self.out_path = self.log_path.with_suffix(".out")
            self.out = open(self.out_path, "wb")
            self.reader = open(self.out_path, "r", encoding="utf-8")
            out = self.out
        else:
            out = {"log": self.log, "pipe": subprocess.PIPE, "null": subprocess.DEVNULL}[stdout]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "congso", *self.args],
            env=base, stdout=out, stderr=subprocess.STDOUT if stdout == "log" else self.log, stdin=subprocess.PIPE if console else subprocess.DEVNULL,
            text=stdout == "pipe", process_group=0 if own_group else None,
        )
        self.stdin = self.proc.stdin

    # -- talking to it ------------------------------------------------------------
    def send(self, line: str) -> None:
        """A line to the program's console (the door's emulated module); gone programs are ignored."""
        if self.stdin is not None and self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, ValueError, OSError):
                self.stdin.write(line.encode() + b"\n")
                self.stdin.flush()

    def close_stdin(self) -> None:
        if self.stdin is not None:
            with contextlib.suppress(OSError):
                self.stdin.close()

    def readline_until(self, prefix: str, timeout: float = 20) -> str:
        """Read stdout lines until one starts with ``prefix``."""
        deadline = time.monotonic() + timeout
        partial = ""
        while time.monotonic() < deadline:
            partial += self.reader.readline()
            if partial.endswith("\n"):
                line, partial = partial, ""
                if line.startswith(prefix):
                    return line.strip()
                continue
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise AssertionError(f"no line starting {prefix!r} from {self.args}; log:\n{self.tail()}")

    def stdout(self) -> str:
        """All of stdout, once the process has exited."""
        return self.out_path.read_text(encoding="utf-8")

    # -- its life ---------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.args} still running after {timeout}s; log:\n{self.tail()}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def tail(self, n: int = 3000) -> str:
        with contextlib.suppress(ValueError):
            self.log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def close(self) -> None:
        self.kill()
        self.close_stdin()
        for f in (self.reader, self.out, self.log, self.proc.stdout):
            if f is not None:
                f.close()


def terminate_all(procs: Iterable[Proc], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to all at once, then wait for each; SIGKILL what outlives ``timeout``."""
    procs = list(procs)
    for p in procs:
        if p.alive():
            p.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()


def start_gateway(spawn: Callable[..., Proc], env: dict[str, str], timeout: float = 20, **options) -> Proc:
    """``congso gateway run``, returned once it is connected to the broker.

    Judged from this process's own log, so a restart is not fooled by what
    an earlier gateway left in the database.
    """
    gw = spawn(["gateway", "run"], env, name="gateway", **options)

    def connected() -> bool:
        if "gateway connected to" in gw.tail():
            return True
        if not gw.alive():  # it will not connect now: say why at once
            raise AssertionError(f"the gateway exited with code {gw.returncode} before connecting; log:\n{gw.tail()}")
        return False

    wait_for(connected, timeout=timeout, what="gateway connected", proc=gw)
    return gw


def wait_for(predicate: Callable[[], object], timeout: float, what: str, proc: Proc | None = None,
             interval: float = 0.1) -> None:
    """Until ``predicate()`` is true (a database still being created reads as false)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except sqlite3.Error:
            pass
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    detail = f"; log:\n{proc.tail()}" if proc else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def start_console(spawn: Callable[..., Proc], env: dict[str, str], port: int | None = None, host: str = HOST,
                  timeout: float = 30, **options) -> tuple[Proc, str]:
    """``congso web run`` on ``host``:``port`` (a free one by default), returned with
    its base URL once ``/healthz`` answers 200.

    ``env`` gives it the gateway's database (``CONGSO_DATA_DIR``, as the
    gateway's own env does); plain HTTP, so loopback only.
    """
    import json
    import urllib.request

    port = port or broker_ops.free_port(host)
    env = {**env, "CONGSO_WEB_HOST": host, "CONGSO_WEB_PORT": str(port)}
    console = spawn(["web", "run"], env, name="web", **options)
    url = f"http://{host}:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy

    def healthy() -> bool:
        if not console.alive():
            raise AssertionError(f"the console exited with code {console.returncode} before answering; log:\n{console.tail()}")
        try:
            with opener.open(f"{url}/healthz", timeout=2) as r:
                return r.status == 200 and json.loads(r.read()).get("ok") is True
        except OSError:
            return False

    wait_for(healthy, timeout=timeout, what=f"the console answering {url}/healthz", proc=console, interval=0.2)
    return console, url
