"""Test harness: real Mosquitto, real gateway and node processes, loopback only.

The processes are started by ``congso.tools.harness``, the one harness that
the benchmarks and ``congso demo`` use too; these are its fixtures.

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
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from congso.ops import broker as broker_mod  # noqa: F401 (tests import it from here)
from congso.tools import harness
from congso.tools.harness import Proc, wait_for  # noqa: F401 (tests import them from here)
from congso.protocol import settings as settings_mod

SITE = "test-site"
NODES = ["node-a", "node-b", "node-c", "node-d", "door-1", "kiosk-1", "tv-1"]


class Broker(harness.Broker):
    """A generated config plus a running mosquitto (``congso.tools.harness``),
    with the settings the tests run their programs with."""

    def __init__(self, nodes=NODES):
        super().__init__(SITE, nodes)

    def env(self, user: str, data_dir: Path | None = None, **extra) -> dict[str, str]:
        """CONGSO_* variables for a program that logs in as ``user``."""
        quick = {
            "CONGSO_CLOCK_SYNCED": "yes",
            "CONGSO_HEALTH_INTERVAL_S": "1",
            "CONGSO_MQTT_RECONNECT_MAX_S": "2",
            "CONGSO_OUTBOX_REPLAY_AFTER_S": "3",
        }
        return super().env(user, data_dir, **{**quick, **extra})

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
    (the vpcd port is fixed); tests may kill and restart it. A pcscd that
    the tests did not start is never stopped (``own_pcscd``)."""
    from congso.devices.pcscd import vpcd_lock

    with vpcd_lock():
        daemon = own_pcscd(tmp_path / "pcscd.log")
        try:
            yield daemon
        finally:
            daemon.stop()


def own_pcscd(log_path: Path):
    """Start a pcscd of the tests' own; call under ``vpcd_lock()``.

    One that the tests did not start (the system's, e.g. a developer's
    pcscd.socket) cannot be shared, since these tests kill and restart
    pcscd, and is not ours to stop: the test is skipped, naming it. In CI,
    where none runs, that is a failure instead: the reader must be tested.
    """
    from congso.devices.pcscd import PcscDaemon, foreign_pcscd

    other = foreign_pcscd()
    if other is not None:
        why = (f"a pcscd that the tests did not start is running (pid {other}; systemd's pcscd.socket?). "
               "The card tests start, kill and restart a pcscd of their own and never stop someone else's; "
               "to run them: sudo systemctl stop pcscd.socket pcscd")
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return PcscDaemon(log_path=log_path).start()


@pytest.fixture
def spawn(tmp_path):
    procs: list[Proc] = []
    counter = iter(range(1000))

    def _spawn(args: list[str], env: dict[str, str], name: str | None = None) -> Proc:
        log = tmp_path / f"{name or args[0]}-{next(counter)}.log"
        p = Proc(args, env, log, name=name)
        procs.append(p)
        return p

    yield _spawn
    for p in procs:
        p.close()


def start_gateway(spawn, broker: Broker, data_dir: Path, **extra) -> Proc:
    return harness.start_gateway(spawn, broker.env("gateway", data_dir, **extra))


def query(db: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


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
