"""The fingerprint driver against the module emulator on a real pseudo-terminal.

The driver opens the pty's slave path through pyserial exactly as it opens
/dev/serial0 on a Pi; the emulator answers on the master side.
"""

from __future__ import annotations

import threading
import time

import pytest

from congso.devices import ERROR, MISSING, OK
from congso.devices.fingerprint import (
    BadFrame,
    FingerprintModule,
    Match,
    ModuleTimeout,
    PortError,
    SensorError,
    codec,
)
from congso.devices.fingerprint.emulator import FingerprintEmulator


@pytest.fixture
def emu():
    # timing 0.05: the real module's relative timings, 20x faster.
    e = FingerprintEmulator(timing=0.05, seed=1)
    e.start()
    yield e
    e.stop()


@pytest.fixture
def module(emu):
    m = FingerprintModule(emu.port, timeout_s=0.5)
    m.open()
    yield m
    m.close()


def press_twice(emu: FingerprintEmulator, finger: str, other: str | None = None):
    """A person following the door's prompts: place, lift, place (again)."""

    def on_step(step: str) -> None:
        if step == "place":
            emu.place(finger)
        elif step == "lift":
            emu.lift()
            threading.Timer(0.1, emu.place, (other or finger,)).start()
        elif step == "stored":
            emu.lift()

    return on_step


# -- the codec: golden vectors from the datasheet ------------------------------------------
@pytest.mark.parametrize(
    "packet, expected",
    [
        (codec.command(codec.GEN_IMG), "EF01FFFFFFFF010003010005"),
        (codec.command(codec.EMPTY), "EF01FFFFFFFF0100030D0011"),
        (codec.command(codec.TEMPLATE_NUM), "EF01FFFFFFFF0100031D0021"),
        (codec.command(codec.VFY_PWD, bytes(4)), "EF01FFFFFFFF0100071300000000001B"),
        (codec.ack(0), "EF01FFFFFFFF07000300000A"),
    ],
)
def test_golden_vectors(packet, expected):
    assert packet.hex().upper() == expected


def test_data_packets_split_at_packet_size_and_mark_the_last():
    packets = codec.data_packets(bytes(range(256)) * 2, 128)
    assert [p[6] for p in packets] == [codec.PID_DATA] * 3 + [codec.PID_END_OF_DATA]
    assert all(len(p) == 9 + 128 + 2 for p in packets)


# -- the driver against the emulator ----------------------------------------------------
def test_handshake_reads_the_module_parameters(emu, module):
    assert module.status == OK
    assert module.params.library_size == 200
    assert module.params.packet_size == 128
    assert module.params.baud == 57600
    assert emu.commands[:2] == ["VfyPwd", "ReadSysPara"]


def test_enroll_then_identify_the_same_finger_and_not_another(emu, module):
    steps = []
    on_step = press_twice(emu, "nguyen-van-an-right-thumb")
    slot = module.enroll(on_step=lambda s: (steps.append(s), on_step(s)), wait_s=3)
    assert steps == ["place", "lift", "place_again", "stored"]
    assert slot == 0 and module.template_count() == 1 and module.used_slots() == {0}

    emu.place("nguyen-van-an-right-thumb")
    match = module.identify(wait_s=1)
    assert isinstance(match, Match) and match.slot == 0 and match.score > 0
    emu.place("someone-else")
    assert module.identify(wait_s=1) is None


def test_enroll_takes_the_first_free_slot_from_the_index_table(emu, module):
    for slot in (0, 1, 2, 150):
        emu.enroll_directly(f"finger-{slot}", slot)
    slot = module.enroll(on_step=press_twice(emu, "new-finger"), wait_s=3)
    assert slot == 3
    assert module.used_slots() == {0, 1, 2, 3, 150}


def test_the_index_table_spans_pages_on_a_large_library():
    with FingerprintEmulator(timing=0, library_size=1000) as as608:
        for slot in (5, 255, 256, 700, 999):
            as608.enroll_directly(f"f{slot}", slot)
        m = FingerprintModule(as608.port, timeout_s=0.5)
        m.open()
        assert m.used_slots() == {5, 255, 256, 700, 999}
        as608.place("f700")
        assert m.identify(wait_s=1).slot == 700
        m.close()


def test_enroll_refuses_a_finger_already_enrolled(emu, module):
    emu.enroll_directly("tran-thi-binh", 7)
    with pytest.raises(SensorError) as e:
        module.enroll(on_step=press_twice(emu, "tran-thi-binh"), wait_s=3)
    assert e.value.code == 0x27 and e.value.slot == 7


def test_enroll_with_two_different_fingers_fails_to_combine(emu, module):
    with pytest.raises(SensorError) as e:
        module.enroll(on_step=press_twice(emu, "thumb", other="index"), wait_s=3)
    assert e.value.code == 0x0A and "combine" in e.value.meaning
    assert module.template_count() == 0


def test_enroll_into_a_full_library(emu, module):
    emu.fill_library()
    with pytest.raises(SensorError) as e:
        module.enroll(on_step=press_twice(emu, "late-comer"), wait_s=3)
    assert e.value.code == 0x1F and e.value.meaning == "fingerprint library is full"


def test_no_finger_within_the_wait_is_a_typed_error_not_a_hang(emu, module):
    started = time.monotonic()
    with pytest.raises(SensorError) as e:
        module.identify(wait_s=0.3)
    assert e.value.code == 0x02
    assert time.monotonic() - started < 1.5
    assert module.capture(wait_s=0) is False


def test_a_poor_image_is_reported_with_its_meaning(emu, module):
    emu.place("wet-finger", quality="poor")
    with pytest.raises(SensorError) as e:
        module.identify(wait_s=1)
    assert e.value.code == 0x06 and "poor image" in str(e.value)


def test_delete_and_empty(emu, module):
    for slot in range(3):
        emu.enroll_directly(f"f{slot}", slot)
    module.delete(1)
    assert module.used_slots() == {0, 2}
    emu.place("f1")
    assert module.identify(wait_s=1) is None
    module.empty()
    assert module.template_count() == 0


@pytest.mark.parametrize("packet_size", [32, 256])
def test_a_template_carried_to_another_door_matches_there(emu, module, packet_size):
    emu.packet_size = packet_size  # the data phase splits at the module's size
    slot = module.enroll(on_step=press_twice(emu, "le-van-cuong"), wait_s=3)
    template = module.export_template(slot)
    assert len(template) == 512

    with FingerprintEmulator(timing=0.05, packet_size=packet_size) as other_door:
        other = FingerprintModule(other_door.port, timeout_s=0.5)
        other.open()
        other.import_template(42, template)
        other_door.place("le-van-cuong")
        assert other.identify(wait_s=1).slot == 42
        other_door.place("someone-else")
        assert other.identify(wait_s=1) is None
        other.close()


def test_a_damaged_template_is_refused_by_the_module(emu, module):
    with pytest.raises(SensorError) as e:
        module.import_template(3, b"\x00" * 512)
    assert e.value.code == 0x0C
    assert module.used_slots() == set()


def test_wrong_password_is_a_clear_error(emu):
    emu.password = 0x1234
    emu.power_cycle()
    m = FingerprintModule(emu.port, timeout_s=0.5, password=0)
    with pytest.raises(SensorError) as e:
        m.open()
    assert e.value.code == 0x13 and "wrong password" in str(e.value)
    assert m.status == ERROR
    m.close()
    # With the right password the module answers everything.
    m = FingerprintModule(emu.port, timeout_s=0.5, password=0x1234)
    assert m.open().library_size == 200
    m.close()


def test_a_silent_module_times_out_at_the_deadline_and_recovers(emu, module):
    emu.silent = True
    started = time.monotonic()
    with pytest.raises(ModuleTimeout):
        module.template_count()
    assert 0.45 < time.monotonic() - started < 1.0
    assert module.status == MISSING
    emu.silent = False
    emu.enroll_directly("x", 0)
    assert module.template_count() == 1
    assert module.status == OK


def test_a_late_reply_is_not_taken_for_the_next_command(emu):
    # GenImg with a finger takes 150 ms here: longer than this driver waits.
    emu.timing = 1.0
    emu.place("slow-finger")
    m = FingerprintModule(emu.port, timeout_s=0.1)
    m.open()
    with pytest.raises(ModuleTimeout):
        m.gen_img()
    emu.enroll_directly("a", 0)
    emu.enroll_directly("b", 1)
    assert m.template_count() == 2  # not the stale GenImg ack
    m.close()


def test_line_noise_and_the_power_on_byte_are_skipped(emu, module):
    emu.enroll_directly("a", 0)
    emu.power_cycle()  # the module says 0x55 when it comes up
    module.verify_password(0)
    emu.noisy_replies(5)  # garbage with false headers before each reply
    for _ in range(5):
        assert module.template_count() == 1
    assert module.noise_bytes > 0
    emu.send_noise(64)
    assert module.template_count() == 1


def test_a_corrupt_reply_is_retried_once_then_reported(emu, module):
    emu.corrupt_replies(1)
    assert module.template_count() == 0  # the retry got a good reply
    emu.corrupt_replies(2)
    with pytest.raises(BadFrame) as e:
        module.template_count()
    assert "checksum" in str(e.value)
    assert module.template_count() == 0  # and the next command is fine


def test_a_module_with_a_ring_led_and_one_without(emu, module):
    assert module.aura_led(1, 100, 2, 0) is True and emu.led == (1, 100, 2, 0)
    with FingerprintEmulator(timing=0, aura_led=False) as as608:
        m = FingerprintModule(as608.port, timeout_s=0.5)
        m.open()
        assert m.aura_led(1, 100, 2, 0) is False
        assert m.aura_led(3, 0, 1, 0) is False  # not asked again
        assert as608.commands.count("AuraLedConfig") == 1
        m.close()


def test_set_sys_para_changes_the_packet_size(emu, module):
    module.set_sys_para(codec.PARAM_PACKET_SIZE, 3)
    assert module.params.packet_size == 256
    with pytest.raises(SensorError) as e:
        module.set_sys_para(9, 1)
    assert e.value.code == 0x1A


def test_unplugged_module_is_a_port_error_and_missing(emu, module):
    emu.unplug()
    with pytest.raises(PortError):
        module.template_count()
    assert module.status == MISSING
    with pytest.raises(PortError):
        module.template_count()  # tries to re-open, fails cleanly again


def test_a_port_that_does_not_exist(tmp_path):
    m = FingerprintModule(str(tmp_path / "ttyNOPE"), timeout_s=0.2)
    with pytest.raises(PortError) as e:
        m.open()
    assert "cannot open" in str(e.value) and m.status == MISSING


def test_the_touch_line_tells_the_door_a_finger_is_there(emu, module):
    from gpiozero.pins.mock import MockFactory

    from congso.devices.gpio import TouchLine

    factory = MockFactory()
    try:
        touch = TouchLine("GPIO24", pin_factory=factory)
        emu.wire_touch(factory.pin(24))
        emu.enroll_directly("pham-thi-dung", 9)
        assert not touch.is_touched
        assert touch.wait_for_touch(0.1) is False
        threading.Timer(0.2, emu.place, ("pham-thi-dung",)).start()
        # The door sleeps on the line instead of polling the module over the UART.
        assert touch.wait_for_touch(2) is True
        assert module.identify(wait_s=0).slot == 9
        emu.lift()
        assert not touch.is_touched
        touch.close()
    finally:
        factory.close()
