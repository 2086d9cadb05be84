"""Settings every congso program takes.

Three layers, each overriding the one before:

1. the defaults below, so every program runs with no config file at all;
2. a TOML file given by ``--config PATH`` or ``CONGSO_CONFIG``;
3. environment variables ``CONGSO_<SECTION>_<KEY>`` (upper case), e.g.
   ``CONGSO_MQTT_HOST`` or ``CONGSO_RATING_DESK_ID``.

A value from the environment is text, converted to the type of the default
(``true``/``false`` for booleans, comma-separated lists); in the file a value
must already have that type (``port = 1883``, not ``port = "1883"``). Every
value is then checked against its range or choices (``RANGES``,
``ABOVE_ZERO``, ``CHOICES``: a port is 1-65535, no number is negative).
An unknown section or key, a value of the wrong type or out of range, or a
file that is not UTF-8 is an error that names the key (and the file or the
variable): a typo in ``/etc/congso/congso.toml`` must not be silently
ignored, nor turn into a traceback.
"""

from __future__ import annotations

import copy
import os
import tomllib
import zoneinfo
from pathlib import Path
from typing import Any, Mapping

from . import topics

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
        # Acked events are kept this many days, so that a gateway restored
        # from a backup can ask for them again (0: delete at the ack).
        "keep_acked_days": 35,
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
        # An event whose time is this far ahead of (or behind) its arrival is
        # stored with a flag the reports show (a node clock gone wrong).
        "max_ahead_h": 24.0,
        "max_behind_days": 35.0,
    },
    "backup": {
        # Gateway: where `congso gateway backup` (nightly timer) writes its
        # copies, e.g. a USB stick's mount point; it must exist (a stick
        # that is not mounted is an error, not a copy on the SD card).
        # Empty: <data dir>/backups, on the same card (better than nothing).
        "dir": "",
        # Copies kept there, newest first; older ones are deleted.
        "keep": 14,
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
        # "pcsc": a reader through pcscd; "none": no reader fitted; "memory": the
        # in-process reader of the door's logic tests (devices/memorycard.py).
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
        # 2: the day's first scan is its "in" and the last its "out"; 4: each
        # session (morning, afternoon) needs its own in and out.
        "scans": 2,
        # Seasonal timetables of the office's own schedule, each
        # "NAME MM-DD..MM-DD HOURS": from that day to that day (every year) the
        # weekdays that have hours above get HOURS instead, e.g.
        # ["summer 04-15..10-14 07:00-11:30,13:30-17:00"].
        "seasons": [],
        # Schedule groups for staff whose hours differ (`congso staff add
        # --schedule NAME`), each "NAME DAYS HOURS" with DAYS mon..sun, a range
        # "mon-fri" or a list "mon,wed,fri"; a group's weekdays not listed are
        # off, e.g. ["cong-an mon-sat 07:00-11:30,13:30-17:00", "ban-thoi-gian mon-fri 07:30-11:30"].
        "groups": [],
    },
    "timesheet": {
        # The head of the official form (Bảng chấm công, mẫu C01-HD).
        # The superior body ("Cơ quan chủ quản"), e.g. "UBND tỉnh Nghệ An".
        "superior": "",
        # The unit's budget relationship code (Mã QHNS), if the office has one.
        "budget_code": "",
        # The department line ("Bộ phận"); empty: the whole office.
        "department": "",
        # The place on the date line ("Kỳ Châu, ngày ... tháng ... năm ...");
        # empty: the office's name without "UBND xã".
        "place": "",
        # Names printed under the three signatures (empty: left blank to sign and write).
        "timekeeper": "",
        "department_head": "",
        "head": "",
    },
    "privacy": {
        # Attendance events older than this many days are removed by the
        # gateway once a day (0 keeps them forever). Five years by default:
        # the signed monthly timesheet is the accounting record kept longer.
        "attendance_retention_days": 1830,
        # The key that encrypts fingerprint templates in the gateway database
        # (AES-GCM), a file kept outside it (0600). Empty: template.key next
        # to the config file (/etc/congso/template.key when installed), or in
        # the data directory's parent when no config file is used.
        "template_key": "",
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
        # dossiers, ready, calendar, announcements, slides, ratings, kpi; a
        # schedule may follow (vocab/schedule.py): "kpi:20 mon-fri 13:30-17:00"
        # shows the KPI page on weekday afternoons only.
        "pages": ["dossiers", "ready", "calendar", "announcements", "slides", "ratings"],
        # Picture and video slides: fetched from the gateway's web server by
        # SHA-256 (as this node, with its MQTT user and password); empty:
        # http://<[mqtt] host>:<[web] port>.
        "media_url": "",
        # The on-disk cache of slides' files, in MiB: the least recently
        # shown go first when it is full.
        "media_cache_mb": 1024,
        # Seconds a picture slide stays when the clerk gave none.
        "slide_s": 10.0,
        # The program a video slide is handed to; the file's path is added
        # last. On a Pi: DRM output and hardware decoding where it has it.
        "video_player": ["mpv", "--vo=drm", "--hwdec=auto-safe", "--fs", "--no-osc", "--no-input-default-bindings", "--really-quiet"],
        # A clip that has not ended this long after its own length is stopped and reported.
        "video_grace_s": 10.0,
        # Dates the TV stays off although on_days says otherwise (public holidays).
        "off_dates": [],
        # HDMI-CEC: auto (cec-ctl, else cec-client, else none), cec-ctl, cec-client, none.
        "cec": "auto",
        "cec_device": "/dev/cec0",
        "cec_tries": 3,
        "cec_retry_s": 2.0,
        # How often the render loop looks at the time (the clock, validity
        # windows, the stale mark); new data, a command and the screen's
        # schedule wake it at once, and a page ends on time.
        "check_hz": 1.0,
        # Footer ticker: steps per second (0: no movement, titles shown still)
        # and speed in pixels per second at 1280x720 (scaled with the screen).
        "ticker_hz": 5.0,
        "ticker_speed": 60.0,
        # A TV above one desk: show only the dossiers of this desk (the dossier's
        # desk as registered, compared without case); empty shows every desk.
        "desk": "",
        # The province portal's page of a dossier, with {code} (http or https):
        # the ready page draws its QR beside each dossier; empty: no QR.
        "dossier_url": "",
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
        # An officer takes the desk (nhận quầy) by tapping their staff card on
        # the kiosk's reader ([card]) and leaves it with a second tap.
        "officer_card": False,
        # The receipt's barcode scanner: "" reads it as key events of the
        # screen (SDL); an evdev device path (/dev/input/by-id/...-kbd) reads it directly.
        "scanner": "",
        # A scan is keys closer together than this (a person typing is slower).
        "scanner_gap_ms": 80,
    },
    "web": {
        # The office console (`congso web run`). Anything but loopback needs
        # tls_cert and tls_key (the office CA's, made by `congso install gateway`).
        "host": "127.0.0.1",
        "port": 8080,
        "tls_cert": "",
        "tls_key": "",
        # A session that has not been used for this long is ended.
        "idle_minutes": 30,
        # The broker's hashed password file (`congso install gateway` writes it):
        # the TVs fetch slides' media from GET /media/<sha256> as themselves.
        "broker_passwd": "/etc/congso/broker/passwd",
    },
    "media": {
        # Gateway: what the clerk may upload as a picture or video slide.
        "max_image_mb": 20,
        "max_video_mb": 200,
        "max_video_s": 300,
        # Pictures up to this many pixels on a side; a video up to 4K.
        "max_side_px": 8000,
        # Renditions made of each picture for the TVs: WIDTHxHEIGHT, fitted inside.
        "renditions": ["1920x1080", "3840x2160"],
    },
    "kpi": {
        # The office's monthly figures (`congso report kpi`, the console's
        # /reports/kpi): the target line each share is drawn against, 0..1.
        "online_target": 0.4,        # dossiers submitted online / received
        "on_time_target": 1.0,       # dossiers resolved by their due date / due
        "satisfaction_target": 0.9,  # satisfied votes / votes (flagged ones left out)
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


# What the type alone does not say. (low, high) inclusive, None for no bound.
# A number not listed here nor in ABOVE_ZERO must be 0 or more: no congso
# setting means anything below zero.
RANGES: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("mqtt", "port"): (1, 65535),
    ("mqtt", "keepalive_s"): (1, 65535),  # MQTT's keep-alive is a 16-bit field
    ("mqtt", "session_expiry_s"): (0, 2**32 - 1),  # and the session expiry a 32-bit one
    ("outbox", "window"): (1, None),
    ("outbox", "keep_acked_days"): (0, 3650),
    ("backup", "keep"): (1, 10000),
    ("gateway", "batch_max"): (1, None),
    ("gateway", "max_ahead_h"): (0.1, None),
    ("gateway", "max_behind_days"): (0.1, None),
    ("fingerprint", "address"): (0, 0xFFFFFFFF),
    ("fingerprint", "password"): (0, 0xFFFFFFFF),
    ("display", "width"): (0, 16384),
    ("display", "height"): (0, 16384),
    ("workrules", "grace_minutes"): (0, 240),
    ("privacy", "attendance_retention_days"): (0, 36500),
    ("signage", "cec_tries"): (1, 100),
    ("signage", "media_cache_mb"): (16, 1024 * 1024),
    ("signage", "slide_s"): (1, 3600),
    ("signage", "video_grace_s"): (1, 600),
    ("rating", "scanner_gap_ms"): (5, 2000),
    ("media", "max_image_mb"): (1, 200),
    ("media", "max_video_mb"): (1, 4096),
    ("media", "max_video_s"): (1, 3600),
    ("media", "max_side_px"): (64, 20000),
    ("web", "port"): (1, 65535),
    ("web", "idle_minutes"): (1, 24 * 60),
    ("kpi", "online_target"): (0, 1),  # shares, as fractions
    ("kpi", "on_time_target"): (0, 1),
    ("kpi", "satisfaction_target"): (0, 1),
}
# Durations and rates where 0 would mean a busy loop or an instant timeout.
ABOVE_ZERO: set[tuple[str, str]] = {
    ("mqtt", "reconnect_min_s"), ("mqtt", "reconnect_max_s"), ("outbox", "replay_after_s"),
    ("health", "interval_s"), ("fingerprint", "timeout_s"), ("signage", "page_s"), ("signage", "check_hz"),
    ("attendance", "finger_poll_s"), ("attendance", "enroll_timeout_s"),
}
# Keys with a fixed set of values (text compared without case; a list key: each item).
CHOICES: dict[tuple[str, str], tuple[Any, ...]] = {
    ("clock", "synced"): ("auto", "yes", "no", "true", "false"),
    ("fingerprint", "backend"): ("serial", "emulator", "none"),
    ("fingerprint", "baud"): tuple(9600 * n for n in range(1, 13)),  # the module's N x 9600
    ("card", "backend"): ("pcsc", "memory", "none"),
    ("display", "rotation"): (0, 90, 180, 270),
    ("rating", "levels"): (3, 4, 5),
    ("workrules", "scans"): (2, 4),
    ("signage", "cec"): ("auto", "cec-ctl", "cec-client", "none"),
    ("signage", "on_days"): ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    ("log", "level"): ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
}
# List keys whose items hold commas themselves ("07:00-11:30,13:30-17:00"): from the
# environment their items are separated by ";" instead of ",".
SEMICOLON_LISTS = {("workrules", "seasons"), ("workrules", "groups")}
# Ids that become MQTT topic levels and broker user names (empty: not set).
ID_KEYS = {("site", "id"): False, ("node", "id"): True, ("rating", "desk_id"): True}  # -> may be empty


def _coerce(section: str, key: str, value: Any, default: Any, strict: bool = False) -> Any:
    """``value`` as the type of ``default``, checked, or a SettingsError naming the key.

    ``strict`` (a TOML file): the value must already have the right type, so
    ``port = "1883"`` is an error; the environment's text is converted.
    """
    separator = ";" if (section, key) in SEMICOLON_LISTS else ","
    value = _convert(f"[{section}] {key}", key, value, default, strict, separator)
    _check_value(section, key, value)
    return value


def _convert(where: str, key: str, value: Any, default: Any, strict: bool, separator: str = ",") -> Any:
    text_hint = f" (write {key} = {value.strip()} in the file, without quotes)" if strict and isinstance(value, str) else ""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if not strict and isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if not strict and isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{where} must be true or false{text_hint}, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if not strict and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise SettingsError(f"{where} must be a whole number{text_hint}, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value != value or value in (float("inf"), float("-inf")):
                raise SettingsError(f"{where} must be a finite number, got {value!r}")
            return float(value)
        if not strict and isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                pass
            else:
                if number == number and number not in (float("inf"), float("-inf")):
                    return number
        raise SettingsError(f"{where} must be a number{text_hint}, got {value!r}")
    if isinstance(default, list):
        if isinstance(value, str) and not strict:
            return [item.strip() for item in value.split(separator) if item.strip()]
        if isinstance(value, (list, tuple)):
            if not all(isinstance(item, str) for item in value):
                raise SettingsError(f"{where} must be a list of text (each item in quotes), got {value!r}")
            return list(value)
        raise SettingsError(f"{where} must be a list, e.g. {key} = [\"a\", \"b\"], got {value!r}")
    if isinstance(value, str):
        return value
    raise SettingsError(f"{where} must be text (in quotes), got {value!r}")


def _check_value(section: str, key: str, value: Any) -> None:
    where = f"[{section}] {key}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = RANGES.get((section, key), (0, None))
        if (section, key) in ABOVE_ZERO and value <= 0:
            raise SettingsError(f"{where} must be more than 0, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise SettingsError(f"{where} must be {bounds}, got {value!r}")
    choices = CHOICES.get((section, key))
    if choices is not None:
        for item in value if isinstance(value, list) else [value]:
            wanted = item.lower() if isinstance(item, str) else item
            if wanted not in [c.lower() if isinstance(c, str) else c for c in choices]:
                raise SettingsError(f"{where} must be one of {', '.join(map(str, choices))}; got {item!r}")
    if (section, key) in ID_KEYS and not (value == "" and ID_KEYS[(section, key)]):
        if not topics.NODE_ID_RE.match(value):
            raise SettingsError(f"{where} {value!r} is not a valid id: use 1-32 characters a-z, 0-9 and '-', "
                                "starting with a letter or digit")
    if (section, key) == ("signage", "dossier_url") and value:
        if "{code}" not in value or not value.lower().startswith(("http://", "https://")) or " " in value:
            raise SettingsError(f"{where} {value!r} must be an http:// or https:// address containing {{code}}, "
                                "e.g. https://dichvucong.example.gov.vn/tra-cuu?ma={code}")
        try:
            value.format(code="X")
        except (KeyError, IndexError, ValueError):
            raise SettingsError(f"{where} {value!r} may hold no braces other than {{code}}") from None
    if (section, key) == ("site", "timezone"):
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"{where} {value!r} is not a time zone (the office's is Asia/Ho_Chi_Minh)") from None


def _read_toml(path: str | os.PathLike) -> dict[str, Any]:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except OSError as e:
        raise SettingsError(f"config file {path} cannot be read: {e.strerror or e}") from None
    try:
        # utf-8-sig: a byte-order mark (Windows Notepad) is not an error.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SettingsError(
            f"config file {path} is not UTF-8 text (byte 0x{raw[e.start]:02x} on line {line}): "
            "save it with the UTF-8 encoding (Vietnamese names need it)"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"config file {path} is not valid TOML: {e}") from None


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
        data = _read_toml(path)
        for section, keys in data.items():
            if not isinstance(keys, dict):
                raise SettingsError(f"{path}: '{section}' must be a [section] table")
            for key, value in keys.items():
                try:
                    _check_known(section, key)
                    values[section][key] = _coerce(section, key, value, DEFAULTS[section][key], strict=True)
                except SettingsError as e:
                    raise SettingsError(f"{path}: {e}") from None

    # Environment: CONGSO_<SECTION>_<KEY>; sections never contain "_".
    ignored = []
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section in DEFAULTS and key in DEFAULTS[section]:
            try:
                values[section][key] = _coerce(section, key, raw, DEFAULTS[section][key])
            except SettingsError as e:
                raise SettingsError(f"{name}: {e}") from None
        else:
            ignored.append(name)
    return Settings(values, source, sorted(ignored))
