"""Touch and GPIO input for the kiosk.

Touch on a Pi without a desktop: SDL's kmsdrm video driver reads the
touch panel through evdev and delivers ``FINGERDOWN`` with x, y normalised
to 0..1 over the panel. SDL also makes a mouse click from each touch
(``MOUSEBUTTONDOWN`` with ``touch`` true): that copy is dropped here, and
``SDL_TOUCH_MOUSE_EVENTS=0`` asks SDL not to make it at all, so one touch is
one press. A real mouse (a technician's) still works.

Positions are turned from the physical panel into the logical (upright)
picture with the display's rotation, so a portrait-mounted kiosk's touch
lands on the button drawn under the finger.
"""

from __future__ import annotations

import os

import pygame

from ..devices import gpio


def configure_sdl() -> None:
    """Before the display opens: one touch, one event."""
    os.environ.setdefault("SDL_TOUCH_MOUSE_EVENTS", "0")
    os.environ.setdefault("SDL_MOUSE_TOUCH_EVENTS", "0")


def unrotate(u: float, v: float, rotation: int) -> tuple[float, float]:
    """Normalised panel position -> normalised position in the upright picture.

    The picture is turned ``rotation`` degrees clockwise onto the panel
    (``Display``): what is drawn at the picture's top-left lands at the
    panel's top-right with 90.
    """
    if rotation == 90:
        return v, 1.0 - u
    if rotation == 180:
        return 1.0 - u, 1.0 - v
    if rotation == 270:
        return 1.0 - v, u
    return u, v


def touch_point(event: pygame.event.Event, logical: tuple[int, int], physical: tuple[int, int],
                rotation: int) -> tuple[int, int] | None:
    """The logical pixel a touch or click event points at; None for other events and touch-made clicks."""
    if event.type == pygame.FINGERDOWN:
        u, v = event.x, event.y
    elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and not getattr(event, "touch", False):
        pw, ph = physical
        u, v = event.pos[0] / max(1, pw), event.pos[1] / max(1, ph)
    else:
        return None
    u, v = unrotate(min(max(u, 0.0), 1.0), min(max(v, 0.0), 1.0), rotation)
    w, h = logical
    return min(w - 1, int(u * w)), min(h - 1, int(v * h))


class KioskButtons(gpio.Buttons):
    """The level buttons, with the LED patterns the kiosk needs on top of ``light``."""

    def show(self, lit: list[bool]) -> None:
        """Each button's LED on or off."""
        for led, on in zip(self._leds, lit):
            if led is not None and led.value != on:
                led.value = on

    def blink_all(self, seconds: float) -> None:
        """All LEDs blink (identify), in gpiozero's own thread."""
        n = max(1, round(seconds))
        for led in self._leds:
            if led is not None:
                led.blink(on_time=0.5, off_time=0.5, n=n, background=True)

    @property
    def led_count(self) -> int:
        return len(self._leds)
