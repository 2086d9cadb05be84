"""Test harness: real Mosquitto, real gateway and node processes, loopback only.

- ``broker``: one Mosquitto for the whole session, started from the config
  that ``congso broker config`` generates (password file, ACL), on a free
  loopback port, and stopped at the end. Never a broker that happens to run.
- ``private_broker``: a broker of the test's own, for tests that kill it.
- ``spawn``: starts ``python -m congso ...`` as a real process with the
  settings in its environment, its output in a log file; every process is
  killed at the end of the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from congso.ops import broker as broker_mod
from congso.protocol import settings as settings_mod

SITE = "test-site"
NODES = ["node-a", "node-b", "node-c", "node-d", "door-1", "kiosk-1", "tv-1"]


class Broker:
    """A generated config plus a running mosquitto."""

    def __init__(self, nodes=NODES):
        # Mosquitto drops to user 'mosquitto' when started as root: its
        # directory must be traversable, so not under pytest's 0700 tmp.
        self.dir = Path(tempfile.mkdtemp(prefix="congso-broker-"))
        os.chmod(self.dir, 0o755)
        self.port = broker_mod.free_port()
        self.credentials = broker_mod.generate(self.dir / "conf", SITE, nodes, port=self.port, bind="127.0.0.1")
        self.process = broker_mod.BrokerProcess(self.dir / "conf", self.port)

    def start(self):
        self.process.start()
        return self

    def stop(self):
        self.process.stop()

    def kill(self):
        self.process.kill()

    def cleanup(self):
        self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def env(self, user: str, data_dir: Path | None = None, **extra) -> dict[str, str]:
        """CONGSO_* variables for a program that logs in as ``user``."""
        env = {
            "CONGSO_SITE_ID": SITE,
            "CONGSO_MQTT_HOST": "127.0.0.1",
            "CONGSO_MQTT_PORT": str(self.port),
            "CONGSO_MQTT_USERNAME": user,
            "CONGSO_MQTT_PASSWORD": self.credentials[user],
            "CONGSO_CLOCK_SYNCED": "yes",
            "CONGSO_HEALTH_INTERVAL_S": "1",
            "CONGSO_MQTT_RECONNECT_MAX_S": "2",
            "CONGSO_OUTBOX_REPLAY_AFTER_S": "3",
        }
        if user != "gateway":
            env["CONGSO_NODE_ID"] = user
        if data_dir is not None:
            env["CONGSO_DATA_DIR"] = str(data_dir)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def settings(self, user: str, data_dir: Path | None = None, **extra):
        return settings_mod.load(environ=self.env(user, data_dir, **extra))


@pytest.fixture(scope="session")
def broker():
    b = Broker().start()
    yield b
    b.cleanup()


@pytest.fixture
def private_broker():
    b = Broker().start()
    yield b
    b.cleanup()


def fresh_broker():
    """For a module that counts exactly what arrives: ``broker = pytest.fixture(scope="module")(fresh_broker)``.

    The shared broker holds what the other modules leave: retained state
    (their gateways publish it) and messages queued for persistent sessions.
    """
    b = Broker().start()
    yield b
    b.cleanup()


@pytest.fixture
def pcscd(tmp_path):
    """Our own pcscd with the vpcd virtual reader, under the machine-wide lock
    (the vpcd port is fixed). One already running (a developer's
    pcscd.socket) is stopped first, not failed on; tests may kill and restart it."""
    from congso.devices.pcscd import PcscDaemon, vpcd_lock

    with vpcd_lock():
        daemon = PcscDaemon(log_path=tmp_path / "pcscd.log").start(replace_running=True)
        try:
            yield daemon
        finally:
            daemon.stop()


class Proc:
    """A congso program running as a real process."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path):
        self.args = args
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
        full_env.update(env)
        full_env["PYTHONUNBUFFERED"] = "1"
        self.log = open(log_path, "ab")
        # stdout goes to a file, not a pipe: a pipe nobody drains would block
        # the program once 64 KiB of output are waiting.
        self.out_path = log_path.with_suffix(".out")
        self.out = open(self.out_path, "wb")
        self.reader = open(self.out_path, "r", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "congso", *args],
            env=full_env,
            stdout=self.out,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )

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

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.args} still running after {timeout}s; log:\n{self.tail()}") from None
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 3000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def close(self) -> None:
        self.kill()
        for f in (self.reader, self.out, self.log):
            f.close()


@pytest.fixture
def spawn(tmp_path):
    procs: list[Proc] = []
    counter = iter(range(1000))

    def _spawn(args: list[str], env: dict[str, str], name: str | None = None) -> Proc:
        log = tmp_path / f"{name or args[0]}-{next(counter)}.log"
        p = Proc(args, env, log)
        procs.append(p)
        return p

    yield _spawn
    for p in procs:
        p.close()


def start_gateway(spawn, broker: Broker, data_dir: Path, **extra) -> Proc:
    gw = spawn(["gateway", "run"], broker.env("gateway", data_dir, **extra), name="gateway")
    # This process's own log, so a restart is not fooled by an old database.
    wait_for(lambda: "gateway connected to" in gw.tail(), timeout=20, what="gateway connected", proc=gw)
    return gw


def query(db: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_for(predicate, timeout: float, what: str, proc: Proc | None = None, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except sqlite3.Error:
            pass
        time.sleep(interval)
    detail = f"; log:\n{proc.tail()}" if proc else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def load_json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run_congso(*args: str, input: str | None = None, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """Run one ``congso`` command to completion, as a technician types it.

    The caller's CONGSO_* variables are dropped (the defaults, plus ``env``),
    and the terminal is wide enough that rich tables do not wrap words.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
    clean.update(env)
    clean.setdefault("COLUMNS", "200")
    return subprocess.run([sys.executable, "-m", "congso", *args], env=clean, input=input,
                          capture_output=True, text=True, timeout=timeout)
