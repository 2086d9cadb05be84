"""Settings are type- and range-checked, and a bad file is a usage error, not a traceback (issue 14.12)."""

from __future__ import annotations

import pytest

from congso.protocol import settings

from conftest import run_congso


def congso_with(tmp_path, text: str | bytes | None = None, **env: str):
    """``congso nodes`` as a technician runs it, with this config file and environment."""
    args = []
    if text is not None:
        path = tmp_path / "congso.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        args = ["--config", str(path)]
    env.setdefault("CONGSO_DATA_DIR", str(tmp_path / "data"))
    return run_congso(*args, "nodes", **env)


def assert_usage_error(result, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def test_a_port_written_as_text_is_an_error_naming_the_key_and_file(tmp_path):
    result = congso_with(tmp_path, '[mqtt]\nport = "1883"\n')
    assert_usage_error(result, "congso.toml", "[mqtt] port must be a whole number", "port = 1883", "without quotes")


def test_a_port_out_of_range_is_an_error(tmp_path):
    assert_usage_error(congso_with(tmp_path, "[mqtt]\nport = 99999\n"), "[mqtt] port must be between 1 and 65535, got 99999")
    assert_usage_error(congso_with(tmp_path, "[mqtt]\nport = 0\n"), "[mqtt] port must be between 1 and 65535")


def test_a_bad_environment_value_names_the_variable(tmp_path):
    assert_usage_error(congso_with(tmp_path, CONGSO_MQTT_PORT="abc"), "CONGSO_MQTT_PORT", "[mqtt] port must be a whole number", "'abc'")
    assert_usage_error(congso_with(tmp_path, CONGSO_MQTT_PORT="70000"), "CONGSO_MQTT_PORT", "between 1 and 65535")


def test_a_config_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    # A file saved in a Windows "ANSI" code page (windows-1252 here), then one in UTF-16.
    legacy = '[site]\nid = "ky-chau"\nname = "UBND xã Châu"\n'.encode("cp1252")
    assert_usage_error(congso_with(tmp_path, legacy), "congso.toml", "is not UTF-8", "line 3")
    assert_usage_error(congso_with(tmp_path, '[mqtt]\nport = 1883\n'.encode("utf-16")), "congso.toml", "is not UTF-8", "line 1")


def test_a_missing_or_unreadable_config_file_is_a_usage_error(tmp_path):
    assert_usage_error(run_congso("--config", str(tmp_path / "nope.toml"), "nodes"), "nope.toml does not exist")
    (tmp_path / "dir.toml").mkdir()
    assert_usage_error(run_congso("--config", str(tmp_path / "dir.toml"), "nodes"), "dir.toml", "is a directory")


def test_a_byte_order_mark_is_not_an_error(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes('[site]\nname = "UBND xã Kỳ Châu"\n[mqtt]\nport = 8883\n'.encode("utf-8-sig"))
    s = settings.load(path, environ={})
    assert s.site.name == "UBND xã Kỳ Châu" and s.mqtt.port == 8883


@pytest.mark.parametrize(
    "text, message",
    [
        ("[mqtt]\nkeepalive_s = -1\n", "[mqtt] keepalive_s must be between 1 and 65535"),
        ("[outbox]\nreplay_after_s = 0\n", "[outbox] replay_after_s must be more than 0"),
        ("[outbox]\nreplay_after_s = -5.0\n", "[outbox] replay_after_s must be more than 0"),
        ("[outbox]\nwindow = 0\n", "[outbox] window must be at least 1"),
        ("[attendance]\nrepeat_window_s = -60\n", "[attendance] repeat_window_s must be at least 0"),
        ("[rating]\nlevels = 7\n", "[rating] levels must be one of 3, 4, 5"),
        ("[display]\nrotation = 45\n", "[display] rotation must be one of 0, 90, 180, 270"),
        ("[fingerprint]\nbackend = 'usb'\n", "[fingerprint] backend must be one of serial, emulator, none"),
        ("[fingerprint]\nbaud = 1234\n", "[fingerprint] baud must be one of 9600"),
        ("[signage]\non_days = ['monday', 'funday']\n", "[signage] on_days must be one of monday"),
        ("[signage]\npages = 'dossiers'\n", "[signage] pages must be a list"),
        ("[gpio]\nbuttons = [17, 27]\n", "[gpio] buttons must be a list of text"),
        ("[gpio]\nrelay_active_low = 'yes'\n", "[gpio] relay_active_low must be true or false"),
        ("[site]\nid = 'Kỳ Châu'\n", "[site] id 'Kỳ Châu' is not a valid id"),
        ("[node]\nid = 'door_1'\n", "[node] id 'door_1' is not a valid id"),
        ("[site]\ntimezone = 'Asia/Hanoi City'\n", "[site] timezone 'Asia/Hanoi City' is not a time zone"),
        ("[log]\nlevel = 'LOUD'\n", "[log] level must be one of DEBUG"),
        ("[mqtt]\nhost = 1883\n", "[mqtt] host must be text"),
    ],
)
def test_every_key_is_checked_and_named(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(settings.SettingsError) as e:
        settings.load(path, environ={})
    assert message in str(e.value) and "bad.toml" in str(e.value)


def test_good_values_still_load_from_file_and_environment(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text('[mqtt]\nport = 8883\nreconnect_min_s = 2\n[log]\nlevel = "debug"\n[node]\nid = ""\n', encoding="utf-8")
    s = settings.load(path, environ={"CONGSO_DISPLAY_ROTATION": "90", "CONGSO_SIGNAGE_ON_DAYS": "monday, saturday"})
    assert s.mqtt.port == 8883 and s.mqtt.reconnect_min_s == 2.0 and s.log.level == "debug"
    assert s.display.rotation == 90 and s.signage.on_days == ["monday", "saturday"]
