"""`congso demo` end to end: the whole office on one machine, playing a working morning."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pygame
import pytest


@pytest.fixture
def out_dir(tmp_path):
    # Inside a 0700 directory, as a checkout in /root or in a Debian home
    # is: the demo's Mosquitto, started as root, drops to user 'mosquitto',
    # which cannot enter it. The demo must cope (its broker files live in a
    # runtime directory of their own).
    os.chmod(tmp_path, 0o700)
    return tmp_path / "demo-out"


def run_demo(out_dir: Path, seconds: int, *options: str, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_") and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "congso", "demo", "--out", str(out_dir), "--duration", str(seconds), *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd,
    )
    try:
        output, _ = proc.communicate(timeout=seconds + 90)
    except subprocess.TimeoutExpired:
        # SIGTERM, not kill: the demo then stops its broker, gateway and nodes.
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
        pytest.fail(f"demo did not stop after its duration:\n{output}")
    assert proc.returncode == 0, output
    return output


def test_demo_plays_a_working_morning_through_every_node(out_dir):
    output = run_demo(out_dir, 30, "--pace", "0.7")

    # Stdout is a pipe: plain lines per scene and per stored event, then a summary.
    assert re.search(r"^scene .* puts a finger on the door's sensor", output, re.M), output
    assert re.search(r"^event .*door-1 +finger \d+ -> NV0\d\d", output, re.M), output
    assert re.search(r"^event .*kiosk-1 +rating ", output, re.M), output
    assert re.search(r"stored this run: \d+ attendance events and \d+ ratings", output), output

    db = sqlite3.connect(f"file:{out_dir / 'gateway' / 'gateway.sqlite'}?mode=ro", uri=True)
    try:
        fingers = db.execute("SELECT count(*) FROM attendance_events WHERE method='finger' AND staff_id IS NOT NULL").fetchone()[0]
        cards = db.execute("SELECT count(*), count(staff_id) FROM attendance_events WHERE method='card'").fetchone()
        votes = db.execute("SELECT count(*), count(session_id), count(officer_id) FROM rating_events").fetchone()
        states = dict(db.execute("SELECT node_id, state FROM nodes").fetchall())
        door_devices = json.loads(db.execute("SELECT devices FROM nodes WHERE node_id = 'door-1'").fetchone()[0])
        moved = db.execute("SELECT count(*) FROM dossier_history WHERE source='demo'").fetchone()[0]
        staff = db.execute("SELECT count(*) FROM staff").fetchone()[0]
    finally:
        db.close()
    assert staff == 12 and fingers >= 2, (staff, fingers, output)
    if "cards are tapped on the vpcd virtual reader" in output:
        # Known cards resolved at the door, and the visitor's card stored as unknown.
        assert cards[0] >= 2 and cards[1] < cards[0], (cards, output)
        assert door_devices.get("card") == "ok", door_devices
    else:
        assert "the door runs without a card reader:" in output
    assert door_devices.get("fingerprint") == "ok", door_devices
    # Citizens rated within an officer's desk session.
    assert votes[0] >= 1 and votes[1] >= 1 and votes[2] >= 1, (votes, output)
    assert moved >= 1  # dossiers moved on the board
    # Stopped in order: the gateway saw every node go offline before it stopped.
    assert states.get("door-1") == "offline" and states.get("kiosk-1") == "offline" and states.get("tv-1") == "offline", states

    # Headless: the TV's and the kiosk's screens were saved as they changed.
    for node, size in (("tv-1", (1280, 720)), ("kiosk-1", (1024, 600))):
        picture = pygame.image.load(str(out_dir / node / "screen.png"))
        assert picture.get_size() == size
        colours = {picture.get_at((x, y))[:3] for x in range(0, size[0], 37) for y in range(0, size[1], 23)}
        assert len(colours) > 3, f"{node}'s screen is blank"
    out = Path(__file__).resolve().parent.parent / "test-out"
    out.mkdir(exist_ok=True)
    shutil.copy(out_dir / "tv-1" / "screen.png", out / "demo-tv-1.png")
    shutil.copy(out_dir / "kiosk-1" / "screen.png", out / "demo-kiosk-1.png")


def test_demo_runs_from_a_0700_directory_and_keeps_its_broker_passwords(tmp_path):
    """`make demo` in a checkout in /root or a 0700 home: the default
    ``demo-out`` there, run twice (a re-run keeps the passwords)."""
    os.chmod(tmp_path, 0o700)
    first = run_demo(Path("demo-out"), 2, cwd=tmp_path)
    broker = tmp_path / "demo-out" / "broker"
    credentials = json.loads((broker / "credentials.json").read_text())
    assert {"gateway", "door-1", "tv-1", "kiosk-1"} <= set(credentials), first
    assert "stored this run:" in first
    # The broker ran from a runtime directory of its own, removed afterwards;
    # the user keeps a copy of its config and its log in demo-out.
    conf = (broker / "mosquitto.conf").read_text()
    password_file = Path(re.search(r"^password_file (.+)$", conf, re.M).group(1))
    assert not password_file.is_relative_to(tmp_path) and not password_file.exists()
    assert (broker / "mosquitto.log").stat().st_size > 0

    second = run_demo(Path("demo-out"), 2, cwd=tmp_path)
    assert json.loads((broker / "credentials.json").read_text()) == credentials, second
    assert "the commune of the last run kept" in second


ACCOUNT_RE = re.compile(r"^congso demo: console account (\S+) +password (\S+) +role (\w+)", re.M)
URL_RE = re.compile(r"^congso demo: the office console: (http://127\.0\.0\.1:\d+)/", re.M)
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _start_demo(out_dir: Path, seconds: int) -> tuple[subprocess.Popen, list[str]]:
    """The demo running; its output lines up to the last printed console account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_") and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "congso", "demo", "--out", str(out_dir), "--duration", str(seconds), "--pace", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: list[str] = []
    for line in proc.stdout:  # the demo prints the accounts once the console answers
        lines.append(line)
        if sum(1 for x in lines if ACCOUNT_RE.match(x)) == 4:
            return proc, lines
    proc.wait(30)
    pytest.fail("the demo ended without printing four console accounts:\n" + "".join(lines))


def test_the_demo_serves_the_console_and_each_printed_account_logs_in(out_dir):
    import httpx

    proc, lines = _start_demo(out_dir, 40)
    try:
        printed = "".join(lines)
        url = URL_RE.search(printed).group(1)
        accounts = ACCOUNT_RE.findall(printed)
        assert sorted(role for _, _, role in accounts) == ["admin", "clerk", "officer", "viewer"], printed
        with httpx.Client(base_url=url, trust_env=False, timeout=10) as web:
            health = web.get("/healthz")
            assert health.status_code == 200 and health.json()["ok"] is True
        for name, password, role in accounts:
            assert len(password) >= 10
            with httpx.Client(base_url=url, trust_env=False, follow_redirects=False, timeout=10) as web:
                form = web.get("/login")
                token = CSRF_RE.search(form.text).group(1)
                wrong = web.post("/login", data={"username": name, "password": password + "x", "csrf_token": token})
                assert wrong.status_code != 303, (name, wrong.status_code)
                token = CSRF_RE.search(web.get("/login").text).group(1)
                ok = web.post("/login", data={"username": name, "password": password, "csrf_token": token})
                assert ok.status_code == 303, (name, role, ok.status_code, ok.text[:300])
                assert web.get("/").status_code == 200, (name, role)  # logged in: the dashboard, not the login page
        # The console reads the gateway's database: the officer is tied to the demo desk.
        db = sqlite3.connect(f"file:{out_dir / 'gateway' / 'gateway.sqlite'}?mode=ro", uri=True)
        try:
            desks = db.execute("SELECT desk_id FROM web_user_desks WHERE user = 'motcua'").fetchall()
            officer = db.execute("SELECT staff_id FROM web_users WHERE name = 'motcua'").fetchone()
        finally:
            db.close()
        assert desks == [("mot-cua-1",)] and officer == ("NV009",)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
    assert proc.returncode == 0, printed + rest
    # Stopping the demo stopped the console.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", trust_env=False, timeout=2)

    # Another run (same directory, same accounts): every password is new.
    second = run_demo(out_dir, 3)
    again = ACCOUNT_RE.findall(second)
    assert [n for n, _, _ in again] == [n for n, _, _ in accounts], second
    first_passwords = {p for _, p, _ in accounts}
    assert not first_passwords & {p for _, p, _ in again}, (accounts, again)
    assert len(first_passwords) == 4  # and no two accounts share one
