"""GPIO devices: the door's lights, buzzer and strike relay, the kiosk's
buttons, and the fingerprint module's touch line.

Everything is gpiozero over a pin factory: on a Pi its default (lgpio), off a
Pi ``GPIOZERO_PIN_FACTORY=mock``, and in the tests a ``MockFactory`` passed
in. A pin set to "" in ``[gpio]`` is not wired: its device is simply absent
and whatever would drive it does nothing, so one node code runs on a door
with a full set of outputs and on a bare Pi with none.

A pin that cannot be claimed does not stop the node: the door still records
attendance without its buzzer. It is logged, shown as "error" in ``status``
("missing" where there is no GPIO at all) and so in the health heartbeat,
and ``congso selftest`` says why.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable

from gpiozero import Button, Buzzer, DigitalInputDevice, DigitalOutputDevice, LED
from gpiozero.exc import BadPinFactory, GPIOPinInUse, PinInvalidPin

from congso.devices import ERROR, MISSING, OK, CheckResult

log = logging.getLogger(__name__)

NOT_A_PI_FIX = "not a Raspberry Pi: set GPIOZERO_PIN_FACTORY=mock to test"
# Into congso's venv: Debian 12 has no python3-lgpio (only the Raspberry Pi
# archive has), and an apt package would not reach the venv's own lgpio anyway.
NO_LGPIO_FIX = ("install lgpio, gpiozero's pin driver, into congso's venv: "
                "sudo /opt/congso/venv/bin/pip install lgpio (sudo congso install ROLE does it)")
MODEL_PATH = "/proc/device-tree/model"


def _pi_model(model_path: str = MODEL_PATH) -> str:
    try:
        return Path(model_path).read_text(errors="replace").strip("\0\n ")
    except OSError:
        return ""


def driver_check(model_path: str = MODEL_PATH, has_lgpio: bool | None = None) -> list[CheckResult]:
    """On a Pi, is gpiozero's lgpio driver there? Without it gpiozero falls
    back to its experimental native driver, which knows no Pi 5 and may
    seem to work on a Pi 4 while the pins do not move."""
    model = _pi_model(model_path)
    if "Raspberry Pi" not in model or os.environ.get("GPIOZERO_PIN_FACTORY"):
        return []
    if has_lgpio is None:
        import importlib.util
        has_lgpio = importlib.util.find_spec("lgpio") is not None
    if has_lgpio:
        return [CheckResult("gpio driver", True, f"lgpio on {model}")]
    return [CheckResult("gpio driver", False, f"lgpio is not installed for {sys.executable} on {model}",
                        NO_LGPIO_FIX)]


def _no_factory_fix(model_path: str = MODEL_PATH) -> str:
    """Why gpiozero found no pin factory, as the technician can act on it."""
    name = os.environ.get("GPIOZERO_PIN_FACTORY")
    if name:
        return f"GPIOZERO_PIN_FACTORY={name} is no pin factory gpiozero knows: use lgpio on a Pi, mock to test"
    try:
        model = Path(model_path).read_text(errors="replace")
    except OSError:
        model = ""
    return NO_LGPIO_FIX if "Raspberry Pi" in model else NOT_A_PI_FIX


def _held_fix(pin: str) -> str:
    return f"another program holds {pin}; is a second congso running?"


def _claim(name: str, pin: str, make: Callable[[], Any]) -> tuple[Any | None, str]:
    """Create one device; on failure log why and return (None, state)."""
    try:
        return make(), OK
    except BadPinFactory as e:
        log.error("%s on %s: no GPIO here (%s); %s", name, pin, e, _no_factory_fix())
        return None, MISSING
    except Exception as e:  # lgpio raises its own error type for a busy line
        log.error("%s on %s cannot be claimed: %s", name, pin, e)
        return None, ERROR


class Feedback:
    """The door's green and red LEDs, buzzer and door-strike relay.

    Every pattern returns at once (gpiozero blinks in its own threads) and
    replaces the LED and buzzer part of the pattern before it, so a refusal
    right after an acceptance never leaves the green LED lit.

    The relay is the exception: only ``accepted()`` (restarting the pulse),
    ``off()`` and ``close()`` touch it. Cutting a running pulse because the
    next person at the reader was refused would lock the door on the person
    who was just let in.
    """

    # Pattern timings in seconds: the door's whole language, in one place.
    SHORT_BEEP_S = 0.1        # accepted, repeat, prompt, and each beep of a series
    LONG_BEEP_S = 0.8         # refused
    BEEP_GAP_S = 0.1          # silence between the beeps of a series
    ACCEPTED_S = 1.0          # green after an accepted finger or card
    REFUSED_S = 1.5           # red after a refused one
    REPEAT_S = 1.0            # green for "already recorded a minute ago"
    ERROR_BLINK_S = 0.2       # red on and off time after a device/storage failure
    ERROR_S = 2.0             # ... for this long (5 blinks), with 3 short beeps
    PROMPT_BLINK_S = 0.5      # green on and off time of "place your finger"
    PROMPT_S = 10.0           # ... for at most this long, unless replaced sooner
    CLOCK_STEP_S = 0.25       # clock_warning: green, red, green, red ... each this long
    CLOCK_STEPS = 6           # ... 1.5 s in all, with 2 short beeps
    IDENTIFY_BLINK_S = 0.5    # identify: both LEDs on/off, one short beep a second

    def __init__(self, gpio: Any, pin_factory: Any = None):
        """``gpio`` is ``settings.gpio``; ``pin_factory`` None is gpiozero's default."""
        self.relay_pulse_s = float(gpio.relay_pulse_s)
        self._lock = threading.RLock()
        self._devices: dict[str, Any] = {}
        self._status: dict[str, str] = {}
        makers = {
            "green_led": partial(LED, gpio.green_led, pin_factory=pin_factory),
            "red_led": partial(LED, gpio.red_led, pin_factory=pin_factory),
            "buzzer": partial(Buzzer, gpio.buzzer, pin_factory=pin_factory),
            # initial_value=False: the door stays locked from the first instant.
            # relay_active_low makes "on" a low level, as most relay boards want.
            "relay": partial(
                DigitalOutputDevice, gpio.relay, active_high=not gpio.relay_active_low,
                initial_value=False, pin_factory=pin_factory,
            ),
        }
        for name, make in makers.items():
            pin = getattr(gpio, name)
            if not pin:
                continue
            device, self._status[name] = _claim(name, pin, make)
            if device is not None:
                self._devices[name] = device

    @property
    def status(self) -> dict[str, str]:
        """Wired outputs only: name -> "ok" / "missing" / "error"."""
        return dict(self._status)

    # -- patterns ---------------------------------------------------------

    def accepted(self) -> None:
        """Green, one short beep, and the door strike released for relay_pulse_s."""
        with self._lock:
            self._quiet()
            self._blink("green_led", self.ACCEPTED_S, 0, 1)
            self._blink("buzzer", self.SHORT_BEEP_S, 0, 1)
            self._blink("relay", self.relay_pulse_s, 0, 1)

    def refused(self) -> None:
        """Red and one long beep; the door stays locked."""
        with self._lock:
            self._quiet()
            self._blink("red_led", self.REFUSED_S, 0, 1)
            self._blink("buzzer", self.LONG_BEEP_S, 0, 1)

    def error(self) -> None:
        """Red blinking and three short beeps: the device or the storage failed."""
        with self._lock:
            self._quiet()
            self._blink("red_led", self.ERROR_BLINK_S, self.ERROR_BLINK_S,
                        round(self.ERROR_S / (2 * self.ERROR_BLINK_S)))
            self._blink("buzzer", self.SHORT_BEEP_S, self.BEEP_GAP_S, 3)

    def prompt(self) -> None:
        """Green blinking and a short beep: "place your finger" (enrolment)."""
        with self._lock:
            self._quiet()
            self._blink("green_led", self.PROMPT_BLINK_S, self.PROMPT_BLINK_S,
                        round(self.PROMPT_S / (2 * self.PROMPT_BLINK_S)))
            self._blink("buzzer", self.SHORT_BEEP_S, 0, 1)

    def repeat(self) -> None:
        """The same person again within a minute: green and a short beep, door stays locked."""
        with self._lock:
            self._quiet()
            self._blink("green_led", self.REPEAT_S, 0, 1)
            self._blink("buzzer", self.SHORT_BEEP_S, 0, 1)

    def clock_warning(self) -> None:
        """Green and red alternating, two short beeps: this node's clock is not synchronised."""
        with self._lock:
            self._quiet()
            green = [i % 2 == 0 for i in range(self.CLOCK_STEPS)] + [False]
            self._sequence("green_led", green, self.CLOCK_STEP_S)
            self._sequence("red_led", [not v for v in green[:-1]] + [False], self.CLOCK_STEP_S)
            self._blink("buzzer", self.SHORT_BEEP_S, self.BEEP_GAP_S, 2)

    def identify(self, seconds: float = 10) -> None:
        """Both LEDs blink and the buzzer beeps each second, so a technician finds this door."""
        with self._lock:
            self._quiet()
            n = max(1, round(seconds / (2 * self.IDENTIFY_BLINK_S)))
            self._blink("green_led", self.IDENTIFY_BLINK_S, self.IDENTIFY_BLINK_S, n)
            self._blink("red_led", self.IDENTIFY_BLINK_S, self.IDENTIFY_BLINK_S, n)
            self._blink("buzzer", self.SHORT_BEEP_S, 2 * self.IDENTIFY_BLINK_S - self.SHORT_BEEP_S, n)

    def off(self) -> None:
        """Everything off, the relay included (the door locks)."""
        with self._lock:
            self._quiet()
            if "relay" in self._devices:
                self._devices["relay"].off()

    def close(self) -> None:
        with self._lock:
            self.off()
            for device in self._devices.values():
                device.close()
            self._devices.clear()

    def __enter__(self) -> Feedback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------

    def _quiet(self) -> None:
        """End the previous pattern on the LEDs and the buzzer (not the relay)."""
        for name in ("green_led", "red_led", "buzzer"):
            device = self._devices.get(name)
            if device is None:
                continue
            if device.source is not None:
                device.source = None  # stops clock_warning's sequence thread
            device.off()  # stops a blink thread, then drives the pin inactive

    def _blink(self, name: str, on_s: float, off_s: float, n: int) -> None:
        device = self._devices.get(name)
        if device is not None:
            device.blink(on_time=on_s, off_time=off_s, n=n, background=True)

    def _sequence(self, name: str, values: list[bool], step_s: float) -> None:
        """Play values one per step_s through gpiozero's source thread.

        blink() cannot start half a period late, which the alternation needs.
        """
        device = self._devices.get(name)
        if device is not None:
            device.source_delay = step_s
            device.source = values


class Buttons:
    """The kiosk's physical rating buttons (best level first) and the LED in each.

    Buttons switch to ground against the Pi's internal pull-up. gpiozero's
    bounce_time asks the pin driver to filter bounces (lgpio does; its mock
    ignores it), and a software guard on top makes one bouncy press one call:
    a press counts only when no other press and no release, of any button,
    happened in the last ``guard_s``. "Of any button" also makes a palm
    landing on two buttons one rating, not two; the release part swallows the
    spurious press a contact can make as it opens.
    """

    GUARD_S = 0.25

    def __init__(self, gpio: Any, on_press: Callable[[int], None], pin_factory: Any = None,
                 guard_s: float | None = None):
        self.on_press = on_press
        self.guard_s = self.GUARD_S if guard_s is None else guard_s
        self._lock = threading.Lock()
        self._last_edge = float("-inf")
        self._status: dict[str, str] = {}
        bounce = float(gpio.bounce_s) or None
        self._buttons: list[Button | None] = []
        for index, pin in enumerate(gpio.buttons):
            name = f"buttons[{index}]"
            button = None
            if pin:
                button, self._status[name] = _claim(name, pin, partial(
                    Button, pin, pull_up=True, bounce_time=bounce, pin_factory=pin_factory))
            if button is not None:
                button.when_pressed = partial(self._pressed, index)
                button.when_released = self._released
            self._buttons.append(button)
        self._leds: list[LED | None] = []
        for index, pin in enumerate(gpio.button_leds):
            name = f"button_leds[{index}]"
            led = None
            if pin:
                led, self._status[name] = _claim(name, pin, partial(LED, pin, pin_factory=pin_factory))
            self._leds.append(led)

    @property
    def count(self) -> int:
        return len(self._buttons)

    @property
    def status(self) -> dict[str, str]:
        return dict(self._status)

    def light(self, index: int | None) -> None:
        """Light button ``index``'s LED and put the others out; None puts all out."""
        if index is not None and not 0 <= index < max(len(self._buttons), len(self._leds)):
            raise IndexError(f"no button {index}; {len(self._buttons)} configured")
        for i, led in enumerate(self._leds):
            if led is not None:
                led.value = i == index

    def close(self) -> None:
        for device in [*self._buttons, *self._leds]:
            if device is not None:
                device.close()
        self._buttons = [None] * len(self._buttons)
        self._leds = [None] * len(self._leds)

    def __enter__(self) -> Buttons:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pressed(self, index: int) -> None:
        with self._lock:
            now = time.monotonic()
            quiet = now - self._last_edge >= self.guard_s
            self._last_edge = now
        if not quiet:
            log.debug("button %d: ignored, within %.2f s of another edge", index, self.guard_s)
            return
        try:
            self.on_press(index)
        except Exception:
            # gpiozero's callback thread must survive a bug in the node's handler.
            log.exception("on_press(%d) failed", index)

    def _released(self) -> None:
        with self._lock:
            self._last_edge = time.monotonic()


class TouchLine:
    """The fingerprint module's touch output on a GPIO (active high).

    Lets the door wait for a finger without polling the module over the UART
    several times a second. Pulled down, so an unplugged module reads "no touch".
    """

    def __init__(self, pin: str, pin_factory: Any = None):
        self.pin = pin
        self._device = DigitalInputDevice(pin, pull_up=False, pin_factory=pin_factory)
        self._callback: Callable[[], None] | None = None

    @property
    def is_touched(self) -> bool:
        return bool(self._device.is_active)

    def wait_for_touch(self, timeout: float | None = None) -> bool:
        """True as soon as a finger is on the sensor, False after ``timeout`` seconds."""
        return bool(self._device.wait_for_active(timeout))

    @property
    def when_touched(self) -> Callable[[], None] | None:
        return self._callback

    @when_touched.setter
    def when_touched(self, callback: Callable[[], None] | None) -> None:
        self._callback = callback
        self._device.when_activated = None if callback is None else (lambda: callback())

    def close(self) -> None:
        self._device.close()


def touch_line(gpio: Any, pin_factory: Any = None) -> TouchLine | None:
    """The touch line from ``settings.gpio``, or None when not wired (poll the module instead)."""
    return TouchLine(gpio.touch, pin_factory) if gpio.touch else None


# -- selftest --------------------------------------------------------------

def _wanted(gpio: Any) -> list[tuple[str, str, Callable[..., Any]]]:
    """(name, pin, maker) for every pin setting, claimed the way the nodes claim it."""
    out: list[tuple[str, str, Callable[..., Any]]] = [
        ("green_led", gpio.green_led, LED),
        ("red_led", gpio.red_led, LED),
        ("buzzer", gpio.buzzer, Buzzer),
        ("relay", gpio.relay, partial(DigitalOutputDevice, active_high=not gpio.relay_active_low,
                                      initial_value=False)),
        ("touch", gpio.touch, partial(DigitalInputDevice, pull_up=False)),
    ]
    out += [(f"buttons[{i}]", pin, partial(Button, pull_up=True)) for i, pin in enumerate(gpio.buttons)]
    out += [(f"button_leds[{i}]", pin, LED) for i, pin in enumerate(gpio.button_leds)]
    if not gpio.buttons:
        out.append(("buttons", "", Button))
    return out


def check(settings: Any, pin_factory: Any = None) -> list[CheckResult]:
    """One line per pin setting: wired pins must be claimable, unwired ones are fine."""
    results: list[CheckResult] = driver_check() if pin_factory is None else []
    held: dict[str, Any] = {}  # name -> device, all held until the end to catch duplicates
    no_factory = ""  # the first pin that found no pin factory: the others need not retry
    try:
        for name, pin, make in _wanted(settings.gpio):
            label = f"gpio {name}"
            if not pin:
                results.append(CheckResult(label, True, "not wired"))
                continue
            if no_factory:
                results.append(CheckResult(label, False, f"{pin}: no pin factory (see {no_factory})",
                                           _no_factory_fix()))
                continue
            # Claimed as the node claims it: the relay is driven to its idle
            # (locked) level, never to open; inputs get the nodes' pulls.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    held[name] = make(pin, pin_factory=pin_factory)
                except BadPinFactory as e:
                    # gpiozero warns once per factory it could not load: the reasons.
                    why = "; ".join(str(w.message) for w in caught) or str(e)
                    results.append(CheckResult(label, False, f"{pin}: no pin factory ({why})",
                                               _no_factory_fix()))
                    no_factory = label
                    continue
                except PinInvalidPin as e:
                    results.append(CheckResult(label, False, str(e),
                                               'use a gpiozero pin name such as "GPIO17" or "BOARD11"'))
                    continue
                except Exception as e:
                    ours = _same_pin_as(pin, held, pin_factory)
                    if ours:
                        results.append(CheckResult(label, False, f"{pin} is also set as {ours}",
                                                   "give every [gpio] setting its own pin"))
                    elif isinstance(e, GPIOPinInUse) or "busy" in str(e).lower():
                        results.append(CheckResult(label, False, f"{pin}: {e}", _held_fix(pin)))
                    else:
                        results.append(CheckResult(label, False, f"{pin}: {e}",
                                                   "add the user to the gpio group (access to /dev/gpiochip*)"))
                    continue
            results.append(CheckResult(label, True, f"{pin} claimed ({type(held[name]).__name__})"))
    finally:
        for device in held.values():
            device.close()
    return results


def _same_pin_as(pin: str, held: dict[str, Any], pin_factory: Any) -> str:
    """Name of a setting this check already holds on the same physical pin, if any.

    Compared through the board's pin table, so "GPIO17" and "BOARD11" match.
    """
    for name, device in held.items():
        try:
            factory = pin_factory or device.pin_factory
            if any(info == device.pin.info for _, info in factory.board_info.find_pin(pin)):
                return name
        except Exception:
            continue
    return ""
