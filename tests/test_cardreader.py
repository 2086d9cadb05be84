"""Card reader: a real pcscd with vsmartcard's vpcd reader, a virtual card, pyscard.

No mocks: each test starts a pcscd of its own, puts a ``VirtualCard`` on
the vpcd reader (a TCP client of pcscd's driver) and reads it with
``CardReader`` exactly as a door node reads an ACR122U. pcscd and the vpcd
ports are machine-wide, so every test holds ``vpcd_lock()`` throughout.
"""

from __future__ import annotations

import time

import pytest

from conftest import wait_for
from congso.devices import ERROR, MISSING, OK
from congso.devices import cardreader
from congso.devices.cardreader import CardReader
from congso.devices.pcscd import is_running, write_vpcd_config
from congso.devices.virtualcard import VirtualCard
from congso.protocol import settings as settings_mod
from smartcard.pcsc.PCSCReader import PCSCReader

UID = "04A1B2C3D4E5F6"
OTHER_UID = "0A0B0C0D"


@pytest.fixture
def card(pcscd):
    c = VirtualCard(UID)
    yield c
    c.close()


class Seen:
    """What the callbacks received, in order."""

    def __init__(self):
        self.uids: list[str] = []
        self.errors: list[str] = []


@pytest.fixture
def start_reader(pcscd):
    started: list[CardReader] = []

    def start(reader: str = "", debounce_s: float = 1.0, wait_ok: bool = True) -> tuple[CardReader, Seen]:
        seen = Seen()
        r = CardReader(reader, on_card=seen.uids.append, debounce_s=debounce_s, on_error=seen.errors.append).start()
        started.append(r)
        if wait_ok:
            wait_for(lambda: r.status == OK, 5, "the reader found")
        return r, seen

    yield start
    for r in started:
        r.stop()


def test_tap_reports_the_uid_once_while_the_card_stays(card, start_reader):
    reader, seen = start_reader(debounce_s=0.3)
    assert reader.reader_name == "Virtual PCD 00 00"
    card.insert()
    wait_for(lambda: seen.uids, 5, "the tap")
    assert seen.uids == [UID]
    # Left on the reader past the debounce window: still one tap, read once.
    # Bounded by what the reader promises: past the window plus one full
    # status wait, a card still lying there would have been read again.
    time.sleep(reader.debounce_s + cardreader.WAIT_MS / 1000 + 0.2)
    assert seen.uids == [UID]
    assert card.uid_reads == 1
    assert (reader.taps, reader.read_errors, seen.errors, reader.status) == (1, 0, [], OK)
    t0 = time.monotonic()
    reader.stop()
    assert time.monotonic() - t0 < 2.0
    assert not reader.running


def test_reinsert_within_the_window_is_the_same_tap_after_it_a_new_one(card, start_reader):
    reader, seen = start_reader(debounce_s=3.0)
    card.insert()
    wait_for(lambda: seen.uids, 5, "the first tap")
    card.remove()
    card.insert()
    wait_for(lambda: card.uid_reads == 2, 5, "the card read again")
    time.sleep(0.2)
    assert seen.uids == [UID], "a re-insert within debounce_s is the same tap"
    card.remove()
    time.sleep(3.2)  # the window counts from the last read
    card.insert()
    wait_for(lambda: len(seen.uids) == 2, 5, "the second tap")
    assert seen.uids == [UID, UID]
    assert reader.taps == 2


def test_a_different_card_is_reported_at_once(card, start_reader):
    reader, seen = start_reader(debounce_s=10.0)
    card.insert()
    wait_for(lambda: seen.uids, 5, "the first card")
    card.remove()
    t0 = time.monotonic()
    card.insert(OTHER_UID)
    wait_for(lambda: len(seen.uids) == 2, 5, "the second card")
    assert time.monotonic() - t0 < 3.0
    assert seen.uids == [UID, OTHER_UID]


def test_a_failing_on_card_callback_does_not_stop_the_reader(card, pcscd):
    seen: list[str] = []

    def on_card(uid: str) -> None:
        seen.append(uid)
        raise RuntimeError("the node's handler is broken")

    with CardReader(on_card=on_card, debounce_s=0.1) as reader:
        wait_for(lambda: reader.status == OK, 5, "the reader found")
        card.insert()
        wait_for(lambda: len(seen) == 1, 5, "the first tap")
        card.remove()
        card.insert(OTHER_UID)
        wait_for(lambda: len(seen) == 2, 5, "the second tap")
        assert reader.status == OK


def test_pcscd_killed_and_restarted_the_reader_recovers(card, pcscd, start_reader):
    reader, seen = start_reader()
    card.insert()
    wait_for(lambda: seen.uids == [UID], 5, "the first tap")
    pcscd.kill()  # SIGKILL: its socket and pid files stay behind
    wait_for(lambda: reader.status == MISSING, 5, "status missing")
    assert "pcscd" in reader.last_error
    wait_for(lambda: not card.is_inserted, 5, "vpcd's socket closed")
    time.sleep(1.0)  # a few reconnect attempts while pcscd is down
    assert reader.status == MISSING and reader.running
    pcscd.start()
    t0 = time.monotonic()
    wait_for(lambda: reader.status == OK, 8, "status ok again")
    assert time.monotonic() - t0 < 5.5  # at most one full backoff
    card.insert(OTHER_UID)
    wait_for(lambda: len(seen.uids) == 2, 5, "a tap after the restart")
    assert seen.uids == [UID, OTHER_UID]
    assert seen.errors == []


def test_card_pulled_mid_read_is_a_clear_error_and_the_next_card_works(card, start_reader):
    reader, seen = start_reader(debounce_s=0.5)
    card.remove_on_uid_read = True
    card.insert()
    wait_for(lambda: seen.errors, 5, "the failed read")
    assert seen.errors[0].startswith("card removed during read")
    assert seen.uids == [] and reader.read_errors == 1
    assert reader.status == OK, "a pulled card is the user's doing, not a reader fault"
    wait_for(lambda: not card.is_inserted, 2, "the card gone")
    card.remove_on_uid_read = False
    card.insert()
    wait_for(lambda: seen.uids == [UID], 5, "the next tap")
    assert len(seen.errors) == 1


def test_card_refusing_get_uid_is_a_specific_error(card, start_reader):
    reader, seen = start_reader()
    card.uid_sw = 0x6A81
    card.insert()
    wait_for(lambda: seen.errors, 5, "the error")
    assert seen.errors == ["card does not support Get UID (SW 6A81)"]
    assert reader.last_error == seen.errors[0]
    assert seen.uids == []
    assert reader.status != ERROR


def test_repeated_bad_replies_make_status_error_until_a_good_read(card, start_reader):
    reader, seen = start_reader(debounce_s=0.1)
    card.uid_reply = b"\x90"  # one byte: no status word, and the card stays put
    for n in range(1, 4):
        card.insert()
        wait_for(lambda: len(seen.errors) == n, 5, f"failed read {n}")
        assert seen.errors[-1] == "card read failed: no answer to Get UID"
        card.remove()
    assert reader.status == ERROR
    card.uid_reply = None
    card.insert()
    wait_for(lambda: seen.uids == [UID], 5, "a good read")
    assert reader.status == OK


def test_virtual_card_answers_get_uid_like_a_pcsc_reader(card):
    card.insert()
    conn = PCSCReader("Virtual PCD 00 00").createConnection()
    try:
        conn.connect()
        assert conn.getATR() == list(bytes.fromhex("3B8F8001804F0CA000000306030001000000006A"))
        uid = list(bytes.fromhex(UID))
        assert conn.transmit([0xFF, 0xCA, 0x00, 0x00, 0x00]) == (uid, 0x90, 0x00)
        assert conn.transmit([0xFF, 0xCA, 0x00, 0x00, 0x07]) == (uid, 0x90, 0x00)
        assert conn.transmit([0xFF, 0xCA, 0x00, 0x00, 0x04]) == ([], 0x6C, 0x07)  # Le too short: the exact length
        assert conn.transmit([0xFF, 0xCA, 0x00, 0x00, 0x0A]) == (uid, 0x62, 0x82)  # Le too long: end of data
        assert conn.transmit([0xFF, 0xCA, 0x01, 0x00, 0x00]) == ([], 0x6A, 0x81)  # ATS bytes: not a MIFARE Classic
        assert conn.transmit([0xFF, 0xB0, 0x00, 0x04, 0x10]) == ([], 0x6D, 0x00)  # Read Binary: not supported
    finally:
        conn.release()


def test_reader_not_present_is_missing_until_it_appears(card, pcscd, start_reader, tmp_path):
    reader, seen = start_reader("Congso Test", wait_ok=False)
    wait_for(lambda: reader.last_error and "no reader matching" in reader.last_error, 5, "the reader missing")
    assert "Virtual PCD 00 00" in reader.last_error
    time.sleep(1.5)  # several wake-ups without it
    assert reader.status == MISSING and reader.running
    # vpcd readers come from reader.conf, which pcscd reads only when it
    # starts: the reader "appears" with a pcscd that declares it.
    pcscd.stop()
    pcscd.config_dir = tmp_path / "reader.conf.d"
    write_vpcd_config(pcscd.config_dir, name="Congso Test Reader")
    pcscd.start()
    wait_for(lambda: reader.status == OK, 8, "the reader found")
    assert reader.reader_name == "Congso Test Reader 00 00"
    card.insert()
    wait_for(lambda: seen.uids == [UID], 5, "a tap on it")


def test_check_for_selftest(pcscd, tmp_path):
    base = settings_mod.load(environ={})
    modules = tmp_path / "modules"
    modules.write_text("snd 1 0 - Live 0x0\n")
    by_name = {r.name: r for r in cardreader.check(base, proc_modules=modules)}
    assert by_name["pcscd"].ok
    assert by_name["card reader"].ok and by_name["card reader"].detail == "Virtual PCD 00 00"
    assert by_name["NFC kernel modules"].ok

    wrong = {r.name: r for r in cardreader.check(base.with_overrides(card={"reader": "ACR122"}), proc_modules=modules)}
    assert not wrong["card reader"].ok
    assert "Virtual PCD 00 00, Virtual PCD 00 01" in wrong["card reader"].fix

    modules.write_text("pn533_usb 20480 0 - Live 0x0\npn533 45056 1 pn533_usb, Live 0x0\nnfc 139264 1 pn533, Live 0x0\n")
    nfc = {r.name: r for r in cardreader.check(base, proc_modules=modules)}["NFC kernel modules"]
    assert not nfc.ok and "pn533_usb, pn533, nfc" in nfc.detail
    assert nfc.fix == "echo 'blacklist pn533_usb' > /etc/modprobe.d/congso-nfc.conf; rmmod pn533_usb pn533 nfc"

    pcscd.stop()
    assert not is_running()
    down = {r.name: r for r in cardreader.check(base, proc_modules=modules)}
    assert not down["pcscd"].ok and down["pcscd"].fix == "apt install pcscd; systemctl enable --now pcscd.socket"
    assert not down["card reader"].ok

    assert cardreader.check(base.with_overrides(card={"backend": "none"})) == [
        cardreader.CheckResult("card reader", True, "none fitted (card.backend = none)")
    ]
