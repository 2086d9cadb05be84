"""GPIO devices on gpiozero's MockFactory: pin levels over time, as a scope would see them.

MockPin records every change as PinState(timestamp, state), the timestamp
being the time since the *previous* change. ``assert_states_and_times``
zips actual and expected lists, so it passes on a prefix: ``timeline``
below also compares the lengths.
"""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero import LED, Device
from gpiozero.pins.mock import MockFactory

from congso.devices import gpio
from congso.protocol import settings as settings_mod

GREEN, RED, BUZZER, RELAY, TOUCH = "GPIO5", "GPIO6", "GPIO13", "GPIO19", "GPIO26"
BUTTONS = ["GPIO17", "GPIO27", "GPIO22"]
BUTTON_LEDS = ["GPIO23", "GPIO24", "GPIO25"]
PULSE = 0.3


def make_settings(**gpio_values):
    values = {"green_led": GREEN, "red_led": RED, "buzzer": BUZZER, "relay": RELAY,
              "relay_pulse_s": PULSE, "touch": TOUCH, "buttons": BUTTONS, "button_leds": BUTTON_LEDS}
    values.update(gpio_values)
    return settings_mod.load(environ={}).with_overrides(gpio=values)


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.reset()


def timeline(pin, expected):
    """The pin went through exactly these (seconds since previous change, level) steps."""
    assert [s.state for s in pin.states] == [level for _, level in expected], pin.states
    pin.assert_states_and_times(expected)


def clear(*pins):
    for pin in pins:
        pin.clear_states()


# -- Feedback --------------------------------------------------------------

def test_accepted_green_short_beep_relay_pulse(factory):
    with gpio.Feedback(make_settings().gpio, pin_factory=factory) as fb:
        green, red, buzzer, relay = (factory.pin(p) for p in (GREEN, RED, BUZZER, RELAY))
        assert fb.status == {"green_led": "ok", "red_led": "ok", "buzzer": "ok", "relay": "ok"}
        assert relay.state is False  # locked from the start
        clear(green, red, buzzer, relay)
        fb.accepted()
        time.sleep(fb.ACCEPTED_S + 0.15)
        timeline(green, [(0, False), (0, True), (fb.ACCEPTED_S, False)])
        timeline(buzzer, [(0, False), (0, True), (0.1, False)])
        timeline(relay, [(0, False), (0, True), (PULSE, False)])
        timeline(red, [(0, False)])


def test_active_low_relay_idles_high_and_pulses_low(factory):
    with gpio.Feedback(make_settings(relay_active_low=True).gpio, pin_factory=factory) as fb:
        relay = factory.pin(RELAY)
        assert relay.state is True  # released strike = high on an active-low board
        clear(relay)
        fb.accepted()
        time.sleep(PULSE + 0.15)
        timeline(relay, [(0, True), (0, False), (PULSE, True)])
    # close() leaves it released too (the pin goes back to an input).


def test_refused_red_long_beep_relay_never_moves(factory):
    with gpio.Feedback(make_settings().gpio, pin_factory=factory) as fb:
        green, red, buzzer, relay = (factory.pin(p) for p in (GREEN, RED, BUZZER, RELAY))
        clear(green, red, buzzer, relay)
        fb.refused()
        time.sleep(fb.REFUSED_S + 0.15)
        timeline(red, [(0, False), (0, True), (fb.REFUSED_S, False)])
        timeline(buzzer, [(0, False), (0, True), (0.8, False)])
        timeline(relay, [(0, False)])
        timeline(green, [(0, False)])


def test_new_pattern_cancels_previous_but_not_the_door_pulse(factory):
    with gpio.Feedback(make_settings().gpio, pin_factory=factory) as fb:
        green, red, buzzer, relay = (factory.pin(p) for p in (GREEN, RED, BUZZER, RELAY))
        fb.REFUSED_S = 0.4  # timings of their own are checked above; keep the suite quick
        clear(green, red, buzzer, relay)
        fb.accepted()
        time.sleep(0.15)
        fb.refused()  # the next person, refused while the door is open
        assert green.state is False and red.state is True
        time.sleep(max(fb.REFUSED_S, fb.LONG_BEEP_S, PULSE) + 0.15)
        # Green went off when refused() began, and never came back.
        timeline(green, [(0, False), (0, True), (0.15, False)])
        # The first person's door pulse ran its full length.
        timeline(relay, [(0, False), (0, True), (PULSE, False)])
        timeline(red, [(0, False), (0.15, True), (fb.REFUSED_S, False)])
        assert not any(p.state for p in (green, red, buzzer, relay))


def test_clock_warning_alternates_and_is_cancelled_cleanly(factory):
    with gpio.Feedback(make_settings().gpio, pin_factory=factory) as fb:
        green, red, buzzer = (factory.pin(p) for p in (GREEN, RED, BUZZER))
        fb.CLOCK_STEP_S = 0.1
        clear(green, red, buzzer)
        fb.clock_warning()
        step = fb.CLOCK_STEP_S
        time.sleep(step * fb.CLOCK_STEPS + 0.15)
        timeline(green, [(0, False), (0, True)] + [(step, v) for v in (False, True, False, True, False)])
        timeline(red, [(0, False)] + [(step, v) for v in (True, False, True, False, True, False)])
        assert [s.state for s in buzzer.states] == [False, True, False, True, False]

        # Cancelled half-way, the sequence threads stop: no stray red blink later.
        fb.clock_warning()
        time.sleep(step * 1.5)
        fb.repeat()
        clear(green, red)
        time.sleep(step * fb.CLOCK_STEPS)
        timeline(red, [(0, False)])
        timeline(green, [(0, True)])  # repeat's green, untouched by the dead sequence


def test_error_prompt_identify_and_off(factory):
    with gpio.Feedback(make_settings().gpio, pin_factory=factory) as fb:
        green, red, buzzer, relay = (factory.pin(p) for p in (GREEN, RED, BUZZER, RELAY))
        # Shortened on this instance: the patterns' shape is the point here.
        fb.ERROR_S, fb.PROMPT_BLINK_S, fb.IDENTIFY_BLINK_S = 0.8, 0.1, 0.2
        clear(green, red, buzzer, relay)
        fb.error()
        time.sleep(fb.ERROR_S + 0.15)
        assert [s.state for s in red.states].count(True) == 2
        assert [s.state for s in buzzer.states].count(True) == 3
        assert len(green.states) == 1 and len(relay.states) == 1

        clear(green, buzzer)
        fb.prompt()
        time.sleep(0.15)
        assert [s.state for s in green.states] == [False, True, False]  # still blinking
        fb.off()  # e.g. the enrolment step timed out
        time.sleep(0.25)
        assert [s.state for s in green.states] == [False, True, False]

        clear(green, red, buzzer)
        fb.identify(seconds=0.4)
        time.sleep(0.55)
        timeline(green, [(0, False), (0, True), (0.2, False)])
        timeline(red, [(0, False), (0, True), (0.2, False)])
        assert [s.state for s in buzzer.states] == [False, True, False]
        timeline(relay, [(0, False)])


def test_unwired_outputs_are_no_ops(factory):
    with gpio.Feedback(make_settings(green_led="", red_led="", relay="").gpio, pin_factory=factory) as fb:
        assert fb.status == {"buzzer": "ok"}
        for pattern in (fb.accepted, fb.refused, fb.error, fb.prompt, fb.repeat, fb.clock_warning, fb.off):
            pattern()
        assert factory.pin(BUZZER).state is False
    none = gpio.Feedback(make_settings(green_led="", red_led="", buzzer="", relay="").gpio, pin_factory=factory)
    assert none.status == {}
    none.accepted()
    none.identify(1)
    none.close()
    assert factory.pins.keys() == {factory.pin(BUZZER).info}  # nothing else was touched


def test_a_busy_pin_is_an_error_not_a_crash(factory):
    squatter = LED(GREEN, pin_factory=factory)
    with gpio.Feedback(make_settings().gpio, pin_factory=factory) as fb:
        assert fb.status["green_led"] == "error"
        assert fb.status["relay"] == "ok"
        fb.accepted()
        assert factory.pin(RELAY).state is True
    squatter.close()


# -- Buttons ---------------------------------------------------------------

def test_button_press_calls_once_with_its_index(factory):
    calls = []
    with gpio.Buttons(make_settings().gpio, calls.append, pin_factory=factory) as buttons:
        assert buttons.count == 3
        pin = factory.pin(BUTTONS[1])
        assert pin.state is True  # pulled up: released
        pin.drive_low()
        pin.drive_high()
        assert calls == [1]
        time.sleep(buttons.guard_s + 0.05)
        factory.pin(BUTTONS[2]).drive_low()
        factory.pin(BUTTONS[2]).drive_high()
        assert calls == [1, 2]


def test_bouncy_press_is_one_call(factory):
    calls = []
    with gpio.Buttons(make_settings().gpio, calls.append, pin_factory=factory) as buttons:
        pin = factory.pin(BUTTONS[0])
        for _ in range(5):  # contact bounce as it closes: a few ms of chatter
            pin.drive_low()
            time.sleep(0.002)
            pin.drive_high()
            time.sleep(0.002)
        pin.drive_low()
        time.sleep(0.1)  # held
        for _ in range(3):  # and as it opens
            pin.drive_high()
            time.sleep(0.002)
            pin.drive_low()
            time.sleep(0.002)
        pin.drive_high()
        assert calls == [0]
        # A palm on two buttons at once is one rating too.
        time.sleep(buttons.guard_s + 0.05)
        factory.pin(BUTTONS[2]).drive_low()
        factory.pin(BUTTONS[1]).drive_low()
        assert calls == [0, 2]
        factory.pin(BUTTONS[2]).drive_high()  # released: gpiozero's hold thread ends at once
        factory.pin(BUTTONS[1]).drive_high()


def test_handler_error_does_not_break_the_buttons(factory):
    calls = []

    def handler(index):
        calls.append(index)
        raise RuntimeError("bug in the node")

    with gpio.Buttons(make_settings().gpio, handler, pin_factory=factory, guard_s=0.01) as buttons:
        factory.pin(BUTTONS[0]).drive_low()
        factory.pin(BUTTONS[0]).drive_high()
        time.sleep(0.03)
        factory.pin(BUTTONS[0]).drive_low()
        assert calls == [0, 0]
        assert buttons.status == {f"buttons[{i}]": "ok" for i in range(3)} | {
            f"button_leds[{i}]": "ok" for i in range(3)}


def test_button_leds(factory):
    with gpio.Buttons(make_settings().gpio, lambda i: None, pin_factory=factory) as buttons:
        leds = [factory.pin(p) for p in BUTTON_LEDS]
        buttons.light(2)
        assert [p.state for p in leds] == [False, False, True]
        buttons.light(0)
        assert [p.state for p in leds] == [True, False, False]
        buttons.light(None)
        assert [p.state for p in leds] == [False, False, False]
        with pytest.raises(IndexError):
            buttons.light(3)
    # Buttons without LEDs: light() is a no-op.
    with gpio.Buttons(make_settings(button_leds=[]).gpio, lambda i: None, pin_factory=factory) as bare:
        bare.light(1)


# -- TouchLine -------------------------------------------------------------

def test_touch_line(factory):
    assert gpio.touch_line(make_settings(touch="").gpio, pin_factory=factory) is None
    touch = gpio.touch_line(make_settings().gpio, pin_factory=factory)
    pin = factory.pin(TOUCH)
    touched = []
    touch.when_touched = lambda: touched.append(time.monotonic())
    assert touch.is_touched is False
    assert touch.wait_for_touch(0.05) is False
    threading.Timer(0.1, pin.drive_high).start()
    t0 = time.monotonic()
    assert touch.wait_for_touch(2) is True
    assert 0.05 < time.monotonic() - t0 < 1
    assert touch.is_touched and len(touched) == 1
    pin.drive_low()
    assert touch.is_touched is False
    touch.close()


# -- selftest --------------------------------------------------------------

def test_check_claims_every_wired_pin_and_releases_them(factory):
    results = gpio.check(make_settings(red_led="", button_leds=[]), pin_factory=factory)
    by_name = {r.name: r for r in results}
    assert all(r.ok for r in results), results
    assert by_name["gpio red_led"].detail == "not wired"
    assert "GPIO5 claimed" in by_name["gpio green_led"].detail
    assert {"gpio buttons[0]", "gpio buttons[2]", "gpio touch", "gpio relay"} <= by_name.keys()
    # Released afterwards: the node can claim them.
    gpio.Feedback(make_settings().gpio, pin_factory=factory).close()
    nothing = gpio.check(make_settings(green_led="", red_led="", buzzer="", relay="", touch="",
                                       buttons=[], button_leds=[]), pin_factory=factory)
    assert all(r.ok and r.detail == "not wired" for r in nothing)


def test_check_reports_a_held_pin_a_duplicate_and_a_bad_name(factory):
    running = gpio.Feedback(make_settings().gpio, pin_factory=factory)  # "another congso"
    try:
        results = gpio.check(make_settings(buttons=["BOARD29"], button_leds=[]), pin_factory=factory)
    finally:
        running.close()
    by_name = {r.name: r for r in results}
    assert not by_name["gpio green_led"].ok
    assert by_name["gpio green_led"].fix == "another program holds GPIO5; is a second congso running?"
    assert not by_name["gpio buttons[0]"].ok  # BOARD29 is GPIO5 under another name
    assert by_name["gpio buttons[0]"].fix == "another program holds BOARD29; is a second congso running?"
    assert by_name["gpio touch"].ok  # the door node does not claim the touch line itself

    results = gpio.check(make_settings(buzzer="BOARD11", buttons=["GPIO17", "GPIO99"], button_leds=[]),
                         pin_factory=factory)
    by_name = {r.name: r for r in results}
    assert not by_name["gpio buttons[0]"].ok  # GPIO17 is BOARD11, the buzzer
    assert "also set as buzzer" in by_name["gpio buttons[0]"].detail
    assert "own pin" in by_name["gpio buttons[0]"].fix
    assert not by_name["gpio buttons[1]"].ok and "GPIO17" in by_name["gpio buttons[1]"].fix


def test_check_off_a_pi_says_how_to_test(monkeypatch):
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    results = gpio.check(make_settings(red_led=""))
    failed = [r for r in results if not r.ok]
    assert failed and all("GPIOZERO_PIN_FACTORY=no-such-factory is no pin factory" in r.fix for r in failed)
    assert "no-such-factory" in failed[0].detail
    assert {r.detail for r in results if r.ok} == {"not wired"}
    # And a door node started there keeps running, its outputs "missing".
    fb = gpio.Feedback(make_settings().gpio)
    assert set(fb.status.values()) == {"missing"}
    fb.accepted()
    fb.close()


def test_no_pin_factory_fix_fits_the_machine(tmp_path, monkeypatch):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    assert gpio._no_factory_fix(str(tmp_path / "no-model")) == gpio.NOT_A_PI_FIX
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.5\0")
    assert gpio._no_factory_fix(str(model)) == gpio.NO_LGPIO_FIX  # a Pi without lgpio installed


def test_a_pi_without_lgpio_is_told_what_reaches_the_venv(tmp_path, monkeypatch):
    # Without lgpio gpiozero quietly takes its experimental native driver,
    # which knows no Pi 5: the selftest says so, with a fix that works in
    # congso's venv (Debian 12 has no python3-lgpio).
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    [missing] = gpio.driver_check(str(model), has_lgpio=False)
    assert not missing.ok and "Raspberry Pi 5" in missing.detail
    assert "/opt/congso/venv/bin/pip install lgpio" in missing.fix and "apt" not in missing.fix
    [present] = gpio.driver_check(str(model), has_lgpio=True)
    assert present.ok and present.detail == "lgpio on Raspberry Pi 5 Model B Rev 1.0"
    assert gpio.driver_check(str(tmp_path / "no-model")) == []  # not a Pi: the pin lines say it
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    assert gpio.driver_check(str(model), has_lgpio=False) == []  # a factory chosen on purpose
