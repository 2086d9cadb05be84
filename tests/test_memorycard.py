"""The in-process card reader (``[card] backend = memory``) behaves as the
PC/SC reader does towards the door: same debounce, same status, same errors."""

from __future__ import annotations

import pytest

from congso.devices import MISSING, OK, ERROR
from congso.devices.cardreader import CardReader
from congso.devices.memorycard import MemoryCardReader
from congso.protocol import settings as settings_mod


def reader(**card):
    settings = settings_mod.load(environ={}).with_overrides(card={"backend": "memory", **card})
    uids: list[str] = []
    errors: list[str] = []
    r = CardReader.from_settings(settings, on_card=uids.append, on_error=errors.append)
    return r, uids, errors


def test_the_memory_backend_is_chosen_by_the_settings_and_debounces_like_the_real_reader():
    r, uids, errors = reader(debounce_s=60)
    assert isinstance(r, MemoryCardReader)
    with pytest.raises(RuntimeError, match="not started"):
        r.tap("04a1b2c3")
    r.start()
    assert r.status == OK and r.running
    r.tap("04a1b2c3")
    r.tap("04A1B2C3")  # again within debounce_s: the same tap
    r.tap("DEADBEEF")  # another card: at once
    assert uids == ["04A1B2C3", "DEADBEEF"] and r.taps == 2 and errors == []
    r.stop()
    assert not r.running


def test_failed_reads_and_an_unplugged_reader_show_as_on_pcsc():
    r, uids, errors = reader()
    r.start()
    for _ in range(3):
        r.fail("card read failed: no answer to Get UID")
    assert errors == ["card read failed: no answer to Get UID"] * 3 and r.status == ERROR
    r.tap("04A1B2C3")  # a good read clears it
    assert r.status == OK and uids == ["04A1B2C3"]
    r.unplug()
    assert r.status == MISSING
    with pytest.raises(RuntimeError, match="unplugged"):
        r.tap("04A1B2C3")
    r.plug()
    assert r.status == OK


def test_an_unknown_backend_names_the_choices():
    with pytest.raises(settings_mod.SettingsError, match="pcsc, memory, none"):
        settings_mod.load(environ={"CONGSO_CARD_BACKEND": "nfc"})
