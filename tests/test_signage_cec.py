"""The TV switched off and on over HDMI-CEC at the schedule's edges.

No TV is attached to the test machine, so a stand-in ``cec-ctl`` (and
``cec-client``) script on PATH plays the TV: it logs the arguments it gets
and answers the power status it was last set to, optionally ignoring the
first command as a TV still waking does. The clock is injected.
"""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from congso.protocol import settings as settings_mod
from congso.signage_node.cec import Cec, PowerControl, Schedule

TZ = ZoneInfo("Asia/Ho_Chi_Minh")

FAKE_CEC_CTL = r"""#!/bin/sh
# A TV behind cec-ctl: logs every call, keeps its power state in a file.
dir="$(dirname "$0")"
echo "$*" >> "$dir/calls.log"
state="$(cat "$dir/power" 2>/dev/null || echo standby)"
case "$*" in
  *--give-device-power-status*) echo "		pwr-state: $state (0x00)"; exit 0 ;;
esac
case "$*" in *--playback*) exit 0 ;; esac
if [ -f "$dir/ignore" ] && [ "$(cat "$dir/ignore")" -gt 0 ]; then
  echo $(( $(cat "$dir/ignore") - 1 )) > "$dir/ignore"; exit 0
fi
case "$*" in
  *--standby*) echo standby > "$dir/power" ;;
  *--image-view-on*) echo on > "$dir/power" ;;
esac
exit 0
"""

FAKE_CEC_CLIENT = r"""#!/bin/sh
dir="$(dirname "$0")"
read line
echo "$* | $line" >> "$dir/calls.log"
case "$line" in
  "pow 0") echo "power status: $(cat "$dir/power" 2>/dev/null || echo standby)" ;;
  "standby 0") echo standby > "$dir/power" ;;
  "on 0") echo on > "$dir/power" ;;
esac
"""


@pytest.fixture
def tv(tmp_path, monkeypatch):
    """A bin directory with the fake TV tools first on PATH; returns a helper."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    class TV:
        dir = bin_dir

        def install(self, name: str, script: str) -> None:
            path = bin_dir / name
            path.write_text(script)
            path.chmod(path.stat().st_mode | stat.S_IEXEC)

        def calls(self) -> list[str]:
            log = bin_dir / "calls.log"
            lines = log.read_text().splitlines() if log.exists() else []
            log.unlink(missing_ok=True)
            return lines

        @property
        def power(self) -> str:
            return (bin_dir / "power").read_text().strip()

    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return TV()


def _schedule(**extra) -> Schedule:
    env = {"CONGSO_SIGNAGE_ON_HOURS": "07:00-17:30", "CONGSO_SIGNAGE_OFF_DATES": "2026-12-02"}
    env.update(extra)
    return Schedule.from_settings(settings_mod.load(environ=env).signage)


def at(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, ss, tzinfo=TZ) if day <= 30 else datetime(2026, 12, day - 30, hh, mm, ss, tzinfo=TZ)


def test_cec_ctl_commands_at_the_schedule_edges(tv):
    tv.install("cec-ctl", FAKE_CEC_CTL)
    cec = Cec("auto", "/dev/cec0", tries=3, retry_s=0.01)
    assert cec.backend == "cec-ctl"
    power = PowerControl(_schedule(), cec)

    # Monday 23/11 06:59:59: before hours, the TV is put in standby once.
    assert power.tick(at(23, 6, 59, 59)) is False
    assert tv.calls() == ["-d /dev/cec0 --playback --osd-name congso", "-d /dev/cec0 --to 0 --standby",
                          "-d /dev/cec0 --to 0 --give-device-power-status"]
    assert power.tick(at(23, 6, 59, 59)) is False and tv.calls() == []  # nothing to do: nothing sent
    # 07:00:00 sharp: on, confirmed by the TV's own answer.
    assert power.tick(at(23, 7, 0)) is True
    assert tv.calls() == ["-d /dev/cec0 --to 0 --image-view-on", "-d /dev/cec0 --to 0 --give-device-power-status"]
    assert tv.power == "on" and power.confirmed
    assert power.tick(at(23, 17, 29, 59)) is True and tv.calls() == []
    # 17:30:00: off.
    assert power.tick(at(23, 17, 30)) is False
    assert tv.calls()[0] == "-d /dev/cec0 --to 0 --standby" and tv.power == "standby"
    # Saturday 28/11 in office hours: stays off, nothing sent.
    assert power.tick(at(28, 9, 0)) is False and tv.calls() == []
    # Tuesday 01/12 07:00: on; Wednesday 02/12 is a holiday (off_dates): off at midnight, not on at 07:00.
    assert power.tick(at(31, 7, 0)) is True and "--image-view-on" in tv.calls()[0]
    assert power.tick(at(31, 17, 30)) is False and "--standby" in tv.calls()[0]
    assert power.tick(at(32, 7, 0)) is False and tv.calls() == []
    assert power.tick(at(33, 7, 0)) is True and "--image-view-on" in tv.calls()[0]


def test_display_power_overrides_until_the_next_edge(tv):
    tv.install("cec-ctl", FAKE_CEC_CTL)
    power = PowerControl(_schedule(), Cec("cec-ctl", tries=2, retry_s=0.01))
    power.tick(at(23, 18, 0))
    tv.calls()
    # An evening meeting: switched on at 19:00 until the schedule's next edge, Tuesday 07:00.
    result = power.set_override(True, at(23, 19, 0))
    assert result == {"on": True, "until": "2026-11-24T07:00:00+07:00", "cec": "cec-ctl", "confirmed": True}
    assert "--image-view-on" in tv.calls()[0]
    assert power.tick(at(23, 23, 0)) is True and tv.calls() == []
    assert power.tick(at(24, 7, 0)) is True and tv.calls() == []  # the schedule agrees: nothing sent
    # Switched off mid-morning: off until 17:30, when the schedule says off too.
    assert power.set_override(False, at(24, 10, 0))["until"] == "2026-11-24T17:30:00+07:00"
    assert power.tick(at(24, 12, 0)) is False
    assert power.tick(at(25, 7, 0)) is True  # Wednesday: the schedule again


def test_an_unanswered_command_is_retried_and_then_reported(tv):
    tv.install("cec-ctl", FAKE_CEC_CTL)
    (tv.dir / "power").write_text("on\n")
    (tv.dir / "ignore").write_text("1\n")  # the TV misses the first standby
    cec = Cec("cec-ctl", tries=3, retry_s=0.01)
    assert cec.set_power(False) is True
    sent = [c for c in tv.calls() if "--standby" in c]
    assert len(sent) == 2 and tv.power == "standby"
    (tv.dir / "ignore").write_text("9\n")  # a TV that never listens
    assert cec.set_power(True) is False
    assert len([c for c in tv.calls() if "--image-view-on" in c]) == 3
    assert "TV reports standby after asking for on" in cec.last_error


def test_cec_client_backend(tv):
    tv.install("cec-client", FAKE_CEC_CLIENT)
    cec = Cec("auto", tries=2, retry_s=0.01)
    assert cec.backend == "cec-client"
    assert cec.set_power(True) and tv.power == "on"
    assert tv.calls() == ["-s -d 1 | on 0", "-s -d 1 | pow 0"]
    assert cec.set_power(False) and tv.power == "standby"


def test_without_cec_the_node_draws_black_and_settings_errors_are_named(tv, monkeypatch):
    monkeypatch.setenv("PATH", str(tv.dir))  # no cec tools at all
    cec = Cec("auto")
    assert cec.backend == "none" and cec.set_power(False) is False
    power = PowerControl(_schedule(), cec)
    assert power.tick(at(23, 20, 0)) is False  # the app draws pages.off_frame(): black
    with pytest.raises(ValueError, match="cec-ctl is not installed .apt install v4l-utils"):
        Cec("cec-ctl")
    with pytest.raises(ValueError, match="on_hours must look like 07:00-17:30"):
        _schedule(CONGSO_SIGNAGE_ON_HOURS="7h-17h")
    with pytest.raises(ValueError, match="on_days must be one of monday, .*; got 'funday'"):
        _schedule(CONGSO_SIGNAGE_ON_DAYS="monday,funday")
    assert Path  # used by the fixture's type


def test_selftest_asks_the_tv_over_cec(tv):
    from conftest import run_congso

    tv.install("cec-ctl", FAKE_CEC_CTL)
    (tv.dir / "power").write_text("on\n")
    device = tv.dir / "cec0"
    device.write_text("")  # stands for /dev/cec0
    env = {"PATH": os.environ["PATH"], "SDL_VIDEODRIVER": "dummy", "CONGSO_SIGNAGE_CEC_DEVICE": str(device)}
    ok = run_congso("selftest", "--role", "signage", **env)
    assert ok.returncode == 0, ok.stdout
    assert "the TV reports on" in ok.stdout

    # CEC switched off in the TV's menu: the TV does not answer; the fix says where to look.
    (tv.dir / "cec-ctl").write_text("#!/bin/sh\nexit 0\n")
    silent = run_congso("selftest", "--role", "signage", **env)
    assert silent.returncode == 1 and "does not answer" in silent.stdout and "Anynet+" in silent.stdout

    missing = run_congso("selftest", "--role", "signage", **{**env, "CONGSO_SIGNAGE_CEC_DEVICE": "/dev/cec9"})
    assert missing.returncode == 1 and "/dev/cec9 does not exist" in missing.stdout
