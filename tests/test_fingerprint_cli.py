"""The technician's tools as they are typed: `congso emulate fingerprint` on a
pty with a stable link, `congso fingerprint ...` against it, and
`congso emulate card` read by the card reader through a real pcscd."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import run_congso, wait_for
from congso.devices.cardreader import CardReader
from congso.devices.pcscd import is_running


def congso(*args: str):
    return run_congso(*args)


@pytest.fixture
def emulated_module(tmp_path):
    link = tmp_path / "ttyFP"
    proc = subprocess.Popen(
        [sys.executable, "-m", "congso", "emulate", "fingerprint", "--link", str(link), "--timing", "0.1",
         "--enroll", "nguyen-van-an=3"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
    )
    first = proc.stdout.readline()
    assert first.startswith("port /dev/pts/"), first

    def say(command: str) -> str:
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    yield str(link), say
    proc.stdin.close()
    proc.wait(10)
    assert not link.exists()  # the link is removed when the emulator stops


def test_carry_a_finger_from_one_slot_to_another_with_the_cli(emulated_module, tmp_path):
    port, say = emulated_module
    info = congso("fingerprint", "--port", port, "info")
    assert info.returncode == 0, info.stderr
    assert "library 200 slots, 1 used" in info.stdout
    assert congso("fingerprint", "--port", port, "slots").stdout.split() == ["3"]

    template = tmp_path / "an.tpl"
    assert congso("fingerprint", "--port", port, "export", "3", str(template)).returncode == 0
    assert template.stat().st_size == 512
    assert congso("fingerprint", "--port", port, "import", "7", str(template)).returncode == 0
    assert congso("fingerprint", "--port", port, "delete", "3").returncode == 0
    assert congso("fingerprint", "--port", port, "slots").stdout.split() == ["7"]

    assert say("place nguyen-van-an") == "finger nguyen-van-an on the sensor"
    found = congso("fingerprint", "--port", port, "identify", "--wait", "2")
    assert found.returncode == 0 and found.stdout.startswith("slot 7 "), found.stdout + found.stderr
    say("place a-stranger")
    unknown = congso("fingerprint", "--port", port, "identify", "--wait", "2")
    assert unknown.returncode == 1 and "finger not in the library" in unknown.stderr


def test_the_emulator_console_answers_bad_lines_and_goes_on(emulated_module):
    port, say = emulated_module
    assert say("enroll someone 999").startswith("error: slot 999 outside the library")
    assert say("frobnicate").startswith("error: unknown command 'frobnicate'")
    assert say("silent on") == "silent"
    dead = congso("fingerprint", "--port", port, "info")
    assert dead.returncode == 1 and "no reply from the module" in dead.stderr
    assert say("silent off") == "answering"
    assert congso("fingerprint", "--port", port, "info").returncode == 0


def test_a_port_that_is_not_there_names_the_port_and_the_next_step(tmp_path):
    run = congso("fingerprint", "--port", str(tmp_path / "ttyNOPE"), "info")
    assert run.returncode == 1
    assert "cannot open" in run.stderr and "congso selftest" in run.stderr


def test_emulate_card_is_read_by_the_card_reader(pcscd):
    seen: list[str] = []
    with CardReader("Virtual PCD 00 00", on_card=seen.append) as reader:
        wait_for(lambda: reader.status == "ok", 5, "the reader found")
        run = congso("emulate", "card", "04a1b2c3d4e5f6", "--hold", "1")
        assert run.returncode == 0, run.stderr
        wait_for(lambda: seen, 5, "the tap")
    assert seen == ["04A1B2C3D4E5F6"]
    # pcscd gone: a clear error, not a traceback.
    pcscd.stop()
    assert not is_running()
    run = congso("emulate", "card", "04A1B2C3D4E5F6")
    assert run.returncode == 1 and "cannot tap the card" in run.stderr and "Traceback" not in run.stderr
