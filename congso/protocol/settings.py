"""Settings every congso program takes.

Three layers, each overriding the one before:

1. the defaults below, so every program runs with no config file at all;
2. a TOML file given by ``--config PATH`` or ``CONGSO_CONFIG``;
3. environment variables ``CONGSO_<SECTION>_<KEY>`` (upper case), e.g.
   ``CONGSO_MQTT_HOST`` or ``CONGSO_RATING_DESK_ID``.

A value from the environment is converted to the type of the default
(``true``/``false`` for booleans, comma-separated lists). An unknown section
or key in the file, or a value of the wrong type, is an error that names it:
a typo in ``/etc/congso/congso.toml`` must not be silently ignored.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "CONGSO_"
CONFIG_ENV = "CONGSO_CONFIG"

# section -> key -> default. The type of each default is the type of the key.
DEFAULTS: dict[str, dict[str, Any]] = {
    "site": {
        "id": "ky-chau",
        "name": "UBND xã Kỳ Châu",
        "timezone": "Asia/Ho_Chi_Minh",
    },
    "node": {
        # Stable node id, also the MQTT client id and broker user name.
        "id": "",
    },
    "mqtt": {
        "host": "127.0.0.1",
        "port": 1883,
        "username": "",
        "password": "",
        "tls_ca": "",
        "keepalive_s": 30,
        # MQTT 5 session expiry; the contract asks for at least one day.
        "session_expiry_s": 7 * 24 * 3600,
        "reconnect_min_s": 1.0,
        "reconnect_max_s": 30.0,
    },
    "data": {
        "dir": "/var/lib/congso",
    },
    "outbox": {
        # Unacked events re-published after this many seconds without an ack.
        "replay_after_s": 15.0,
        # Events published but not yet acked, at most (bounded batches).
        "window": 1000,
    },
    "health": {
        "interval_s": 30.0,
    },
    "clock": {
        # "auto" asks the kernel (adjtimex) whether NTP has synchronised the
        # clock; "yes"/"no" force the answer (tests, demo, hardware RTC).
        "synced": "auto",
    },
    "gateway": {
        "batch_max": 500,
        "batch_wait_s": 0.005,
    },
    "fingerprint": {
        # "serial": a module on `port`; "emulator": the software module on a
        # pseudo-terminal (demo, tests); "none": no module fitted.
        "backend": "serial",
        # A device path or a pyserial URL (e.g. "rfc2217://host:port").
        "port": "/dev/serial0",
        "baud": 57600,
        "address": 0xFFFFFFFF,
        "password": 0,
        # Deadline for one command's reply: a silent module never hangs us.
        "timeout_s": 2.0,
    },
    "card": {
        # "pcsc": a reader through pcscd; "none": no reader fitted.
        "backend": "pcsc",
        # Substring of the PC/SC reader name; empty takes the first reader.
        "reader": "",
        # The same UID again within this many seconds is one tap.
        "debounce_s": 2.0,
    },
    "gpio": {
        # gpiozero pin names ("GPIO17", "BOARD11"); empty: not wired. The
        # pin factory is gpiozero's own GPIOZERO_PIN_FACTORY (mock off a Pi).
        "green_led": "",
        "red_led": "",
        "buzzer": "",
        "relay": "",
        # Most door-strike relay boards switch on a low level.
        "relay_active_low": False,
        "relay_pulse_s": 3.0,
        # The fingerprint module's touch output (R503 pin 5, active high).
        "touch": "",
        # Rating buttons, best level first, and the LED in each button.
        "buttons": [],
        "button_leds": [],
        "bounce_s": 0.05,
    },
    "display": {
        # SDL video driver; empty tries kmsdrm, fbcon, then a desktop, then
        # dummy. SDL_VIDEODRIVER in the environment wins.
        "driver": "",
        # Degrees clockwise (0, 90, 180, 270): a TV hung in portrait.
        "rotation": 0,
        # 0 takes the screen's own size.
        "width": 0,
        "height": 0,
        # A TTF/OTF file; empty finds one with full Vietnamese coverage.
        "font": "",
    },
    # -- roles: each section below belongs to one role (see its package) ----
    "attendance": {
        # The same person again within this window: a beep, no second event.
        "repeat_window_s": 60.0,
        # How often the module is asked for an image when its touch line is not wired.
        "finger_poll_s": 0.15,
        # An enrolment gives up when no finger comes for this long.
        "enroll_timeout_s": 20.0,
    },
    "workrules": {
        # Gateway: office hours per weekday, "HH:MM-HH:MM" periods separated
        # by commas; empty = not a working day. Defaults: the usual hours of
        # a Vietnamese state office (Mon-Fri, morning and afternoon).
        "monday": "07:30-11:30,13:30-17:00",
        "tuesday": "07:30-11:30,13:30-17:00",
        "wednesday": "07:30-11:30,13:30-17:00",
        "thursday": "07:30-11:30,13:30-17:00",
        "friday": "07:30-11:30,13:30-17:00",
        "saturday": "",
        "sunday": "",
        # Minutes after the start (before the end) that still count as on time.
        "grace_minutes": 5,
    },
    "signage": {
        # Seconds each page stays on screen.
        "page_s": 15.0,
        # The TV is on during these hours (HH:MM-HH:MM) on working days.
        "on_hours": "07:00-17:30",
        "on_days": ["monday", "tuesday", "wednesday", "thursday", "friday"],
        # Data older than this is marked with "Cập nhật lúc HH:MM".
        "stale_after_s": 300.0,
        # Pages in rotation order, each "name" or "name:seconds" (overrides page_s):
        # dossiers, ready, calendar, announcements, ratings.
        "pages": ["dossiers", "ready", "calendar", "announcements", "ratings"],
        # Dates the TV stays off although on_days says otherwise (public holidays).
        "off_dates": [],
        # HDMI-CEC: auto (cec-ctl, else cec-client, else none), cec-ctl, cec-client, none.
        "cec": "auto",
        "cec_device": "/dev/cec0",
        "cec_tries": 3,
        "cec_retry_s": 2.0,
        # How often the render loop looks for something new to draw.
        "check_hz": 5.0,
        # Footer ticker: steps per second (0: no movement, titles shown still)
        # and speed in pixels per second at 1280x720 (scaled with the screen).
        "ticker_hz": 5.0,
        "ticker_speed": 60.0,
    },
    "rating": {
        "desk_id": "",
        # The desk as citizens know it, on the kiosk's footer ("Quầy 1 - Tư pháp");
        # empty shows "Quầy <desk_id>".
        "desk_name": "",
        # 3 (very satisfied, satisfied, dissatisfied), 4 or 5 levels.
        "levels": 3,
        # No second vote within this many seconds of the last.
        "lockout_s": 5.0,
        "thanks_s": 3.0,
        # After "Không hài lòng": ask why (tickable reasons). The vote is sent
        # with what is ticked when "Gửi" is pressed or after this many
        # seconds without a touch.
        "ask_reasons": True,
        "reasons_timeout_s": 20.0,
        # A vote is flagged "burst" when at least burst_presses presses were
        # ignored during the lockout before it and it comes within
        # burst_window_s after that lockout ended (button-mashing, children).
        "burst_presses": 3,
        "burst_window_s": 10.0,
        # Touch and buttons together: a second press within this many seconds
        # of an accepted one is the same press.
        "press_guard_s": 0.3,
        # Seconds the screen and the button LEDs flash on `identify`.
        "identify_s": 10.0,
    },
    "log": {
        "level": "INFO",
    },
}


class SettingsError(ValueError):
    """A setting is unknown or has a value of the wrong type."""


class Section:
    """Attribute access to one section: ``settings.mqtt.host``."""

    def __init__(self, name: str, values: dict[str, Any]):
        self._name = name
        self._values = values

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"no setting [{self._name}] {key}") from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


class Settings:
    """All settings of one program, loaded once at start."""

    def __init__(self, values: dict[str, dict[str, Any]], source: str | None = None, ignored_env: list[str] | None = None):
        self._values = values
        self.source = source  # the TOML file read, if any
        # CONGSO_* variables that match no setting: most likely a typo.
        self.ignored_env = ignored_env or []

    def __getattr__(self, section: str) -> Section:
        try:
            return Section(section, self._values[section])
        except KeyError:
            raise AttributeError(f"no settings section [{section}]") from None

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self._values)

    def with_overrides(self, **sections: Mapping[str, Any]) -> "Settings":
        """A copy with some values replaced, e.g. ``with_overrides(node={"id": "x"})``."""
        values = self.as_dict()
        for section, keys in sections.items():
            for key, value in keys.items():
                _check_known(section, key)
                values[section][key] = _coerce(section, key, value, DEFAULTS[section][key])
        return Settings(values, self.source, self.ignored_env)

    @property
    def data_dir(self) -> Path:
        return Path(self.data.dir)


def _check_known(section: str, key: str) -> None:
    if section not in DEFAULTS:
        raise SettingsError(f"unknown settings section [{section}]; known: {', '.join(DEFAULTS)}")
    if key not in DEFAULTS[section]:
        raise SettingsError(
            f"unknown setting [{section}] {key}; known in [{section}]: {', '.join(DEFAULTS[section])}"
        )


def _coerce(section: str, key: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of ``default`` or raise a SettingsError naming the key."""
    where = f"[{section}] {key}"
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{where} must be true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise SettingsError(f"{where} must be a whole number, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise SettingsError(f"{where} must be a number, got {value!r}")
    if isinstance(default, list):
        if isinstance(value, list):
            return list(value)
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        raise SettingsError(f"{where} must be a list, got {value!r}")
    if isinstance(value, str):
        return value
    raise SettingsError(f"{where} must be text, got {value!r}")


def load(config_path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load settings: defaults, then the TOML file, then ``CONGSO_*`` variables.

    ``config_path`` wins over ``CONGSO_CONFIG``. A named file that does not
    exist is an error (a mistyped path must not fall back to defaults).
    """
    environ = os.environ if environ is None else environ
    values = copy.deepcopy(DEFAULTS)
    path = config_path or environ.get(CONFIG_ENV) or None
    source = None
    if path:
        source = str(path)
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise SettingsError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise SettingsError(f"config file {path} is not valid TOML: {e}") from None
        for section, keys in data.items():
            if not isinstance(keys, dict):
                raise SettingsError(f"{path}: '{section}' must be a [section] table")
            for key, value in keys.items():
                _check_known(section, key)
                values[section][key] = _coerce(section, key, value, DEFAULTS[section][key])

    # Environment: CONGSO_<SECTION>_<KEY>; sections never contain "_".
    ignored = []
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section in DEFAULTS and key in DEFAULTS[section]:
            values[section][key] = _coerce(section, key, raw, DEFAULTS[section][key])
        else:
            ignored.append(name)
    return Settings(values, source, sorted(ignored))
