"""Deactivation end to end: the real broker, the gateway process, two door processes with the fingerprint
module emulator (on a pty) and, at the first door, the vpcd virtual card through the real pcscd.

What the office cares about: once a person is deactivated, no door opens for them (card or finger),
their template is gone from the sensor of every online door within seconds, and a door that was off
at the time deletes it as soon as it is back; `congso staff deletions` says what is still pending.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import fresh_broker, query, run_congso, start_gateway, wait_for
from congso.devices.fingerprint.emulator import FingerprintEmulator
from congso.devices.virtualcard import VirtualCard

PINS = {"CONGSO_GPIO_GREEN_LED": "GPIO17", "CONGSO_GPIO_RED_LED": "GPIO18",
        "CONGSO_GPIO_BUZZER": "GPIO22", "CONGSO_GPIO_RELAY": "GPIO27", "CONGSO_GPIO_RELAY_PULSE_S": "0.5"}
UID = "04A1B2C3"


def door_env(broker, node_id, tmp_path, **extra):
    env = broker.env(node_id, tmp_path / node_id, GPIOZERO_PIN_FACTORY="mock", CONGSO_CARD_BACKEND="none",
                     CONGSO_FINGERPRINT_BACKEND="serial", CONGSO_ATTENDANCE_FINGER_POLL_S="0.05", **PINS)
    env.update({k: str(v) for k, v in extra.items()})
    return env


# A broker of this module's own: the shared one keeps other tests' doors (their retained status), and
# the gateway would carry the finger to them and wait for them to delete it (conftest.fresh_broker).
broker = pytest.fixture(scope="module")(fresh_broker)


def wait_roster(door, staff_n: int, fingers: int = 0, timeout: float = 10) -> None:
    """Until the door prints a roster of ``staff_n`` staff holding at least ``fingers`` fingers here."""
    deadline = time.monotonic() + timeout
    while True:
        words = door.readline_until("roster ", max(0.1, deadline - time.monotonic())).split()
        if int(words[3]) == staff_n and int(words[5]) >= fingers:
            return


def test_a_deactivated_person_opens_no_door_and_their_template_goes_from_every_sensor(spawn, broker, tmp_path, pcscd):
    data = tmp_path / "gateway"
    gw = start_gateway(spawn, broker, data)
    db = data / "gateway.sqlite"

    def cli(*args, ok=True):
        r = run_congso(*args, CONGSO_DATA_DIR=str(data))
        assert (r.returncode == 0) == ok, r.stdout + r.stderr
        return r.stdout

    def pending():
        return json.loads("[" + ",".join(cli("staff", "deletions", "--json").splitlines()) + "]")

    cli("staff", "add", "NV007", "Lê Thị Hồng")
    cli("card", "assign", "NV007", UID)
    cli("staff", "consent", "NV007", "--recorded-by", "Trần Văn Bình")  # no template without it
    emu1, emu2 = FingerprintEmulator(timing=0), FingerprintEmulator(timing=0)
    env1 = door_env(broker, "door-1", tmp_path, CONGSO_FINGERPRINT_PORT=emu1.start(), CONGSO_CARD_BACKEND="pcsc",
                    CONGSO_CARD_DEBOUNCE_S=0.2, CONGSO_ATTENDANCE_ENROLL_TIMEOUT_S=5)
    env2 = door_env(broker, "node-a", tmp_path, CONGSO_FINGERPRINT_PORT=emu2.start())
    door1 = spawn(["attendance", "run"], env1, name="door-1")
    door2 = spawn(["attendance", "run"], env2, name="node-a")
    card = VirtualCard(UID)
    try:
        wait_roster(door1, 1)
        wait_roster(door2, 1)
        wait_for(lambda: query(db, "SELECT count(*) FROM nodes WHERE kind='attendance'")[0][0] == 2, 20,
                 "both doors registered", gw)
        wait_for(lambda: [json.loads(d or "{}").get("card") for d, in query(
            db, "SELECT devices FROM nodes WHERE node_id='door-1'")] == ["ok"], 15, "door-1's reader", door1)

        # Enrolled at door-1 from the office, carried to node-a by the gateway.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
        env["CONGSO_DATA_DIR"] = str(data)
        enrol = subprocess.Popen([sys.executable, "-m", "congso", "enroll", "--node", "door-1", "--staff", "NV007"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        door1.readline_until("enroll place NV007")
        emu1.place("hong-index")
        door1.readline_until("enroll lift NV007")
        emu1.lift()
        door1.readline_until("enroll place_again NV007")
        emu1.place("hong-index")
        door1.readline_until("enroll stored NV007")
        emu1.lift()
        out, err = enrol.communicate(timeout=30)
        assert enrol.returncode == 0, err
        wait_for(lambda: query(db, "SELECT node_id, slot FROM finger_slots ORDER BY node_id") == [
            ("door-1", 0), ("node-a", 0)], 20, "the finger carried to node-a", gw)
        assert emu1.slot_of("hong-index") == 0 and emu2.slot_of("hong-index") == 0
        wait_roster(door1, 1, fingers=1)
        # The card opens door-1 before (so a refusal after means something).
        card.insert()
        assert door1.readline_until("feedback ").split()[1:5] == ["accepted", "card", UID, "NV007"]
        card.remove()

        # node-a is switched off (killed), then the person leaves.
        door2.kill()
        t0 = time.monotonic()
        said = cli("staff", "deactivate", "NV007")
        assert "asked 2 door(s) to delete the fingerprint of NV007: door-1 (slot 0), node-a (slot 0)" in said

        # door-1: the template leaves its sensor within 10 s; card and finger refused.
        wait_for(lambda: emu1.slot_of("hong-index") is None, 10, "the template gone from door-1's sensor", door1)
        wait_roster(door1, 0)
        gone_s = time.monotonic() - t0
        assert gone_s < 10, gone_s
        card.insert()
        assert door1.readline_until("feedback ").split()[1:5] == ["refused", "card", UID, "-"]
        card.remove()
        time.sleep(0.3)
        emu1.place("hong-index")
        assert door1.readline_until("feedback ") == "feedback refused finger - -"
        emu1.lift()
        # node-a is still pending, and the office can see it.
        rows = pending()
        assert [(r["staff_id"], r["node_id"], r["slot"]) for r in rows] == [("NV007", "node-a", 0)], rows
        assert emu2.slot_of("hong-index") == 0  # still in its sensor: the door is off

        # node-a comes back: it deletes the template, and nothing is pending any more.
        door2 = spawn(["attendance", "run"], env2, name="node-a")
        wait_for(lambda: emu2.slot_of("hong-index") is None, 20, "the template gone from node-a's sensor", door2)
        wait_for(lambda: pending() == [], 10, "every deletion confirmed", gw)
        assert query(db, "SELECT node_id FROM finger_slots") == []
        assert query(db, "SELECT node_id, confirmed_at IS NOT NULL FROM finger_deletions ORDER BY node_id") == [
            ("door-1", 1), ("node-a", 1)]
        # No template is left in the gateway's database either.
        assert query(db, "SELECT count(*) FROM outgoing_commands WHERE args LIKE '%template%'") == [(0,)]
        assert query(db, "SELECT count(*) FROM command_replies WHERE result LIKE '%template%'") == [(0,)]
    finally:
        card.close()
        emu1.stop()
        emu2.stop()
    assert door1.terminate() == 0 and gw.terminate() == 0
