"""The receipt's barcode scanner at the kiosk: key events under SDL, and an evdev device read directly.

The kiosk app runs in this process (SDL dummy video) against the real broker
and a real gateway; the scanner's keys are posted into pygame's queue as SDL
delivers a USB scanner's (``KEYDOWN``, and ``TEXTINPUT`` as a real keyboard
adds), fast or at a person's pace. The evdev path gets the kernel's own
``struct input_event`` records through a FIFO standing in for
``/dev/input/by-id/...``. Assertions read what is drawn (texts and pixels)
and the vote the gateway stored.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pygame
import pytest
from gpiozero.pins.mock import MockFactory

from congso.rating_node import screens
from congso.rating_node.kiosk import BAD_SCAN
from congso.rating_node.scanner import KEY_ENTER, SHIFTS, input_event, key_codes
from congso.vocab.dossiers import code_in_scan as dossier_code

from conftest import fresh_broker, query, start_gateway, wait_for
from test_rating_kiosk import Harness

OUT = Path(__file__).resolve().parent.parent / "test-out" / "rating"
DESK = "mot-cua-1"
SIZE = (1280, 720)
CODE = "000.00.12.H56-261201-0001"

# A broker of this module's own: what other modules' kiosks left queued for the
# gateway (votes made with no gateway running) must not reach these gateways.
broker = pytest.fixture(scope="module")(fresh_broker)


def test_what_counts_as_a_dossier_code():
    assert dossier_code(CODE) == CODE
    assert dossier_code(" 000.00.12.h56-261201-0001 ") == CODE  # a scanner with caps lock off
    # The province portal's QR: the code taken out of the URL, encoded or not.
    assert dossier_code(f"https://dichvucong.binhdai.gov.vn/tra-cuu-ho-so?ma={CODE}") == CODE
    assert dossier_code("https://dvc.example.gov.vn/hs/000.00.12.H56-261201-0001/ket-qua") == CODE
    assert dossier_code("https://dvc.example.gov.vn/?q=000%2E00%2E12%2EH56-261201-0001") == CODE
    for bad in ("", "ABC123XYZ", "000.00.12.H56-261301-0001",   # no 13th month
                "000.00.12.H56-261201", "x000.00.12.H56-261201-0001",
                f"https://dvc.example.gov.vn/?a={CODE}&b=000.00.12.H56-261202-0002",  # which one?
                "https://dvc.example.gov.vn/tra-cuu", f"ftp://x/{CODE}"):
        assert dossier_code(bad) is None, bad


@pytest.fixture
def gateway(spawn, broker, tmp_path):
    data = tmp_path / "gateway"
    proc = start_gateway(spawn, broker, data)
    proc.db = data / "gateway.sqlite"
    yield proc
    proc.terminate()


@pytest.fixture
def make_kiosk(broker, tmp_path, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    made: list[Harness] = []

    def make(**rating) -> Harness:
        env = {"CONGSO_RATING_DESK_ID": DESK, "CONGSO_DISPLAY_WIDTH": SIZE[0], "CONGSO_DISPLAY_HEIGHT": SIZE[1],
               "CONGSO_RATING_LOCKOUT_S": 0.5, "CONGSO_RATING_THANKS_S": 0.3, "CONGSO_RATING_PRESS_GUARD_S": 0.05,
               "CONGSO_RATING_SCANNER_GAP_MS": 80}
        env.update({f"CONGSO_RATING_{k.upper()}": v for k, v in rating.items()})
        h = Harness(broker.settings("kiosk-1", tmp_path / "kiosk", **env), MockFactory())
        made.append(h)
        assert h.app.runtime.link.wait_connected(10)
        return h

    yield make
    for h in made:
        h.close()


def keydown(ch: str) -> pygame.event.Event:
    if ch == "\n":
        return pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, unicode="\r", mod=0, scancode=40)
    return pygame.event.Event(pygame.KEYDOWN, key=ord(ch.lower()), unicode=ch, mod=0, scancode=0)


def type_keys(k: Harness, text: str, gap_s: float = 0.0, with_textinput: bool = False) -> None:
    """Post ``text`` as key events, ``gap_s`` apart (0: a scanner's burst), then wait until handled."""
    for ch in text:
        pygame.event.post(keydown(ch))
        if with_textinput and ch != "\n":  # what SDL adds for a real keyboard's printable key
            pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text=ch))
        if gap_s:
            time.sleep(gap_s)
    k.settle()


def votes(db) -> list[dict]:
    return [json.loads(r[0]) for r in query(db, "SELECT payload FROM rating_events ORDER BY seq")]


def test_a_scan_is_shown_and_tied_to_the_next_vote_typing_and_bad_scans_are_not(gateway, make_kiosk):
    k = make_kiosk()
    # A person at the kiosk's keyboard types the code slowly: that is not a scan, nothing happens.
    type_keys(k, CODE + "\n", gap_s=0.12)
    assert "dossier" not in k.texts() and "notice" not in k.texts() and k.app.kiosk.scanned is None

    # The scanner's burst, ended by Enter: the code under the question.
    type_keys(k, CODE + "\n")
    assert k.texts()["dossier"] == f"Hồ sơ: {CODE}"
    k.screenshot("scan-shown")

    # A bad scan (a product barcode): a short red message, the code already scanned stays.
    type_keys(k, "8934567123456\n")
    assert k.texts()["notice"].replace("\n", " ") == BAD_SCAN == "Mã không hợp lệ, vui lòng quét lại"
    assert k.pixel((SIZE[0] // 2, 130)) == screens.WARN and k.app.screen.targets == []  # nothing to press under it
    k.screenshot("scan-bad")
    wait_for(lambda: "notice" not in k.texts(), 5, "the message to go")
    assert k.texts()["dossier"] == f"Hồ sơ: {CODE}"

    k.touch("level:0")
    wait_for(lambda: len(votes(gateway.db)) == 1, 10, "the vote")
    assert votes(gateway.db)[0]["dossier_code"] == CODE
    # Tied to that vote only: the next citizen's vote has no code.
    wait_for(lambda: k.app.kiosk.screen == "idle" and not k.app.kiosk.view(time.monotonic()).locked, 5, "idle")
    k.settle()
    assert "dossier" not in k.texts()
    k.touch("level:1")
    wait_for(lambda: len(votes(gateway.db)) == 2, 10, "the second vote")
    assert votes(gateway.db)[1]["dossier_code"] is None


def test_keydown_with_textinput_counts_each_character_once_and_a_portal_qr(make_kiosk):
    k = make_kiosk()
    url = f"https://dichvucong.binhdai.gov.vn/tra-cuu?ma={CODE}"
    type_keys(k, url + "\n", with_textinput=True)
    assert k.texts()["dossier"] == f"Hồ sơ: {CODE}" and k.app.scans == {"ok": 1, "bad": 0}


def test_a_scanned_code_waits_only_so_long(make_kiosk):
    k = make_kiosk()
    k.app.call(lambda: setattr(k.app.kiosk, "rules", k.app.kiosk.rules.__class__(
        **{**k.app.kiosk.rules.__dict__, "scan_hold_s": 1.0})))
    type_keys(k, CODE + "\n")
    assert k.texts()["dossier"] == f"Hồ sơ: {CODE}"
    wait_for(lambda: "dossier" not in k.texts(), 5, "the code dropped after scan_hold_s")
    assert k.app.kiosk.scanned is None


def write_keys(fd: int, text: str, start: float, gap_s: float) -> None:
    """The scanner as the kernel reports it: press/release records with their times, Enter last."""
    t = start
    records = []
    for code, shift in key_codes(text) + [(KEY_ENTER, False)]:
        if shift:
            records.append(input_event(min(SHIFTS), 1, t))
        records += [input_event(code, 1, t), input_event(0, 0, t, etype=0), input_event(code, 0, t + 0.002)]
        if shift:
            records.append(input_event(min(SHIFTS), 0, t + 0.003))
        t += gap_s
    os.write(fd, b"".join(records))


def test_an_evdev_scanner_read_directly(make_kiosk, tmp_path):
    path = tmp_path / "usb-Barcode_Scanner-event-kbd"
    os.mkfifo(path)
    writer = os.open(path, os.O_RDWR)  # holds the FIFO open, as a plugged-in device is
    try:
        k = make_kiosk(scanner=str(path))
        wait_for(lambda: k.app._devices().get("scanner") == "ok", 10, "the scanner opened")
        write_keys(writer, "http://dvc.example.gov.vn/HS?ma=" + CODE, time.time(), 0.004)
        wait_for(lambda: "dossier" in k.texts(), 5, "the scanned code on screen")
        assert k.texts()["dossier"] == f"Hồ sơ: {CODE}"
        # Keys a person types on the same device (slower than scanner_gap_ms): nothing.
        k.app.call(lambda: setattr(k.app.kiosk, "scanned", None))
        write_keys(writer, CODE, time.time(), 0.2)
        time.sleep(0.5)
        k.settle()
        assert "dossier" not in k.texts() and "notice" not in k.texts()
    finally:
        os.close(writer)


def test_a_scanner_path_that_is_not_there_is_missing_in_health(make_kiosk, tmp_path):
    k = make_kiosk(scanner=str(tmp_path / "no-such-scanner"))
    wait_for(lambda: k.app.scanner.last_error is not None, 5, "the scanner looked for")
    assert k.app._devices()["scanner"] == "missing" and "No such file" in k.app.scanner.last_error
    k.touch("level:2")  # the kiosk goes on (the reasons screen: no vote sent with no gateway to take it)
    assert k.app.kiosk.screen == "reasons"
    k.touch("back")
