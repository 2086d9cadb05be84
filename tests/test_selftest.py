"""`congso selftest` as a technician runs it: a real process, real devices
(the module emulator on a pty, gpiozero's mock pins), a table, an exit code."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import run_congso


def selftest(*args: str, **env: str):
    return run_congso("selftest", *args, **env)


def test_a_working_door_passes_and_names_what_it_found():
    run = selftest(
        "--role", "attendance",
        CONGSO_FINGERPRINT_BACKEND="emulator",
        CONGSO_CARD_BACKEND="none",
        GPIOZERO_PIN_FACTORY="mock",
        CONGSO_GPIO_GREEN_LED="GPIO17",
        CONGSO_GPIO_RELAY="GPIO23",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "library 200" in run.stdout and "57600 baud" in run.stdout
    assert "GPIO17" in run.stdout and "FAIL" not in run.stdout


def test_a_missing_module_fails_with_the_fix(tmp_path):
    run = selftest(
        "--role", "attendance",
        CONGSO_FINGERPRINT_PORT=str(tmp_path / "ttyAMA9"),
        CONGSO_CARD_BACKEND="none",
        GPIOZERO_PIN_FACTORY="mock",
    )
    assert run.returncode == 1, run.stdout
    assert "FAIL" in run.stdout and "cannot open" in run.stdout
    assert "enable_uart=1" in run.stdout  # the fix, not just the symptom
    assert re.search(r"\d+ passed, [1-9]\d* failed", run.stdout)


def test_a_tv_passes_with_a_vietnamese_font_and_fails_without_one(tmp_path):
    # CEC off: on a machine with cec-ctl but no /dev/cec0 (a Pi image in an emulator) it would fail.
    ok = selftest("--role", "signage", SDL_VIDEODRIVER="dummy", CONGSO_SIGNAGE_CEC="none")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "DejaVuSans" in ok.stdout and "dummy" in ok.stdout

    # A font without Vietnamese letters: named, refused, and the fix given.
    from font_helpers import latin_only_font

    latin_only = latin_only_font()
    bad = selftest("--role", "signage", SDL_VIDEODRIVER="dummy", CONGSO_SIGNAGE_CEC="none", CONGSO_DISPLAY_FONT=str(latin_only))
    assert bad.returncode == 1, bad.stdout
    assert "latin-only.ttf" in bad.stdout and "fonts-dejavu-core" in bad.stdout


def test_settings_named_in_the_output_keep_their_brackets():
    # "[fingerprint] backend" is how the docs name a setting; rich would read
    # "[fingerprint]" as markup and print "backend" alone.
    run = selftest("--role", "attendance", CONGSO_FINGERPRINT_BACKEND="none", CONGSO_CARD_BACKEND="none",
                   GPIOZERO_PIN_FACTORY="mock")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[fingerprint] backend = none" in run.stdout


def test_a_door_without_pyscard_is_told_what_reaches_the_venv():
    # A venv without pyscard (pip's has no aarch64 wheel and builds from
    # source): the selftest names the library and Debian's package, which
    # congso's venv sees, and still checks the other devices.
    code = ("import sys; sys.modules['smartcard'] = None; sys.argv[0] = 'congso'\n"
            "from congso.cli import main; main()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
    env.update(CONGSO_FINGERPRINT_BACKEND="none", GPIOZERO_PIN_FACTORY="mock", COLUMNS="200")
    run = subprocess.run([sys.executable, "-c", code, "selftest", "--role", "attendance"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "the Python library smartcard is not installed" in run.stdout
    assert "sudo apt install python3-pyscard" in run.stdout
    assert "check itself failed" not in run.stdout
    assert "[fingerprint] backend = none" in run.stdout  # the other devices were checked


def test_a_pi5_door_on_serial0_is_told_which_uart_is_on_the_pins(tmp_path):
    from congso.devices.fingerprint import backends

    pi5, pi4 = "Raspberry Pi 5 Model B Rev 1.0", "Raspberry Pi 4 Model B Rev 1.5"
    assert "debug connector" in backends.pi5_port_problem("/dev/serial0", pi5)
    assert backends.pi5_port_problem("/dev/ttyAMA0", pi5) == ""
    assert backends.pi5_port_problem("/dev/serial0", pi4) == ""  # serial0 is GPIO 14/15 on a Pi 4
    assert "dtparam=uart0=on" in backends.UART_FIX and "dtoverlay=disable-bt" in backends.UART_FIX
