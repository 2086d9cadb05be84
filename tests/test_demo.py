"""`congso demo` end to end: real broker, gateway and simulated nodes for a few seconds."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def out_dir():
    # Not pytest's 0700 tmp_path: Mosquitto, started as root, drops to user
    # 'mosquitto', which must be able to reach its config in here.
    path = Path(tempfile.mkdtemp(prefix="congso-demo-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_demo_runs_the_office_and_stores_events(out_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "congso", "demo", "--out", str(out_dir), "--duration", "12"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        output, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        # SIGTERM, not kill: the demo then stops its broker, gateway and nodes.
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
        pytest.fail(f"demo did not stop after its duration:\n{output}")

    assert proc.returncode == 0, output
    # Stdout is a pipe: plain lines, one per stored event, then a summary.
    assert re.search(r"^event .*door-1 +(card|finger) ", output, re.M), output
    assert re.search(r"^event .*kiosk-1 +rating ", output, re.M), output
    assert re.search(r"stored this run: \d+ attendance events and \d+ ratings", output), output

    db = sqlite3.connect(f"file:{out_dir / 'gateway' / 'gateway.sqlite'}?mode=ro", uri=True)
    try:
        attendance = db.execute("SELECT count(*) FROM attendance_events").fetchone()[0]
        ratings = db.execute("SELECT count(*) FROM rating_events").fetchone()[0]
        states = dict(db.execute("SELECT node_id, state FROM nodes").fetchall())
        door_devices = db.execute("SELECT devices FROM nodes WHERE node_id = 'door-1'").fetchone()[0]
    finally:
        db.close()
    # 12 s at 0.7/s and 0.3/s: about 8 and 3, minus start-up time.
    assert attendance >= 3 and ratings >= 1, (attendance, ratings, output)
    # The door's fingers went through the driver to the module emulator.
    assert '"fingerprint": "ok"' in door_devices, door_devices
    # Stopped in order: the gateway saw both nodes go offline before it stopped.
    assert states.get("door-1") == "offline" and states.get("kiosk-1") == "offline", states
