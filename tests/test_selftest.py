"""`congso selftest` as a technician runs it: a real process, real devices
(the module emulator on a pty, gpiozero's mock pins), a table, an exit code."""

from __future__ import annotations

import re
from pathlib import Path

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
    ok = selftest("--role", "signage", SDL_VIDEODRIVER="dummy")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "DejaVuSans" in ok.stdout and "dummy" in ok.stdout

    # A font without Vietnamese letters: named, refused, and the fix given.
    import pygame

    latin_only = Path(pygame.__file__).parent / "freesansbold.ttf"
    bad = selftest("--role", "signage", SDL_VIDEODRIVER="dummy", CONGSO_DISPLAY_FONT=str(latin_only))
    assert bad.returncode == 1, bad.stdout
    assert "freesansbold" in bad.stdout and "fonts-dejavu-core" in bad.stdout
