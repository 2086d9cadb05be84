"""The door end to end: real broker, real gateway process, the door as a real
process or as a real in-process object on gpiozero's MockFactory, the
fingerprint module emulator on a pty, the card reader in-process
(``[card] backend = memory``) for the door's logic and pcscd with the vpcd
virtual card end to end.

What a person at the door cares about: a known card opens the door (green,
relay) and is recorded once; an unknown card is refused but still recorded,
so the office can assign it; a finger enrolled from the office is identified
at every door; nothing recorded is lost when the door is killed or the
broker is down; line noise does not stop the door.
"""

from __future__ import annotations

import json
import subprocess
import sys
import os
import time

from gpiozero.pins.mock import MockFactory

from conftest import query, run_congso, start_gateway, wait_for
from congso.attendance_node.node import AttendanceNode
from congso.devices.fingerprint.emulator import FingerprintEmulator
from congso.devices.virtualcard import VirtualCard
from congso.gateway import staff
from congso.gateway.db import open_db

PINS = {"CONGSO_GPIO_GREEN_LED": "GPIO17", "CONGSO_GPIO_RED_LED": "GPIO18",
        "CONGSO_GPIO_BUZZER": "GPIO22", "CONGSO_GPIO_RELAY": "GPIO27", "CONGSO_GPIO_RELAY_PULSE_S": "0.5"}


def _gateway(spawn, broker, tmp_path):
    data = tmp_path / "gateway"
    proc = start_gateway(spawn, broker, data)
    proc.db = data / "gateway.sqlite"
    proc.data_dir = data
    return proc


def cli(gw, *args, **env):
    r = run_congso(*args, CONGSO_DATA_DIR=str(gw.data_dir), **env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def door_env(broker, node_id, tmp_path, **extra):
    env = broker.env(node_id, tmp_path / node_id, GPIOZERO_PIN_FACTORY="mock", CONGSO_CARD_BACKEND="none",
                     CONGSO_FINGERPRINT_BACKEND="serial", CONGSO_ATTENDANCE_FINGER_POLL_S="0.05", **PINS)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Lines(list):
    """What an in-process door printed."""

    def wait(self, prefix: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self):
                if line.startswith(prefix):
                    self.remove(line)
                    return line
            time.sleep(0.01)
        raise AssertionError(f"no line {prefix!r}; got {list(self)}")


def in_process_door(broker, node_id, tmp_path, factory, **extra):
    env = door_env(broker, node_id, tmp_path, **extra)
    from congso.protocol import settings as settings_mod

    lines = Lines()
    node = AttendanceNode(settings_mod.load(environ=env), pin_factory=factory, out=lines.append)
    node.start()
    assert node.runtime.link.wait_connected(10), node.runtime.link.last_error
    return node, lines


def wait_roster(lines: Lines, staff_n: int, fingers: int = 0, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.wait("roster ", max(0.1, deadline - time.monotonic())) if isinstance(lines, Lines) \
            else lines.readline_until("roster ", max(0.1, deadline - time.monotonic()))
        words = line.split()
        if int(words[3]) == staff_n and int(words[5]) >= fingers:
            return


def levels(pin) -> list[bool]:
    return [s.state for s in pin.states]


def test_cards_at_the_door_green_and_relay_unknown_card_assign_deactivate(spawn, broker, tmp_path):
    """The door's logic with cards, on the in-process reader (``[card] backend = memory``)."""
    gw = _gateway(spawn, broker, tmp_path)
    cli(gw, "staff", "add", "NV001", "Nguyễn Thị Thu Hà", "-d", "Văn phòng")
    cli(gw, "staff", "add", "NV002", "Trần Văn Bình")
    cli(gw, "card", "assign", "NV001", "04A1B2C3")
    # The door also has a fingerprint module, which will be unplugged mid-run.
    emulator = FingerprintEmulator(timing=0)
    factory = MockFactory()
    node, lines = in_process_door(broker, "door-1", tmp_path, factory, CONGSO_CARD_BACKEND="memory", CONGSO_CARD_DEBOUNCE_S=0.2,
                                  CONGSO_FINGERPRINT_PORT=emulator.start())
    try:
        wait_roster(lines, 2)
        wait_for(lambda: node.card.status == "ok", 10, "the card reader")
        green, red, relay = factory.pin("GPIO17"), factory.pin("GPIO18"), factory.pin("GPIO27")

        node.card.tap("04A1B2C3")
        line = lines.wait("feedback ")
        verdict, method, uid, who, event_id = line.split()[1:6]
        assert (verdict, method, uid, who) == ("accepted", "card", "04A1B2C3", "NV001")
        assert True in levels(green) and True not in levels(red)
        assert levels(relay)[-1] is True  # the strike is released now ...
        wait_for(lambda: levels(relay)[-1] is False, 3, "the relay pulse to end")  # ... for relay_pulse_s
        wait_for(lambda: query(gw.db, "SELECT count(*) FROM attendance_events")[0][0] == 1, 10, "the event", gw)
        assert query(gw.db, "SELECT event_id, node_id, method, credential, staff_id, clock_synced FROM attendance_events") == [
            (event_id, "door-1", "card", "04A1B2C3", "NV001", 1)]

        # The fingerprint module dies: health says so, cards go on.
        emulator.unplug()
        wait_for(lambda: node.devices()["fingerprint"] != "ok", 10, "the module seen gone")
        relay_changes = len(relay.states)
        node.card.tap("DEADBEEF")
        line = lines.wait("feedback ")
        assert line.split()[1:5] == ["refused", "card", "DEADBEEF", "-"]
        unknown_id = line.split()[5]
        assert True in levels(red) and len(relay.states) == relay_changes  # the door stayed locked
        wait_for(lambda: query(gw.db, "SELECT count(*) FROM attendance_events")[0][0] == 2, 10, "the unknown tap", gw)
        assert query(gw.db, "SELECT staff_id FROM attendance_events WHERE event_id=?", (unknown_id,)) == [(None,)]
        out = cli(gw, "card", "unknown")
        assert "DEADBEEF" in out and "door-1" in out and "1 unknown cards" in out

        # The office assigns the card: the door knows it within a second or so.
        cli(gw, "card", "assign", "NV002", "DEADBEEF")
        assert "no unknown cards" in cli(gw, "card", "unknown")
        wait_roster(lines, 2)
        node.card.tap("DEADBEEF")
        assert lines.wait("feedback ").split()[1:5] == ["accepted", "card", "DEADBEEF", "NV002"]

        # NV001 leaves: their card is refused from the next roster on.
        cli(gw, "staff", "deactivate", "NV001")
        wait_roster(lines, 1)
        node.card.tap("04A1B2C3")
        assert lines.wait("feedback ").split()[1:5] == ["refused", "card", "04A1B2C3", "-"]
        wait_for(lambda: query(gw.db, "SELECT count(*) FROM attendance_events")[0][0] == 4, 10, "all taps", gw)
        health = json.loads(query(gw.db, "SELECT devices FROM nodes WHERE node_id='door-1'")[0][0])
        assert health["card"] == "ok" and health["fingerprint"] in ("missing", "error") and health["relay"] == "ok"
    finally:
        node.stop()
        emulator.stop()
    assert gw.terminate() == 0


def test_a_card_on_the_real_reader_opens_the_door_process(spawn, broker, tmp_path, pcscd):
    """End to end: the door as a real process reads a card on vpcd's virtual
    reader through the real pcscd, opens, and the gateway stores the tap."""
    gw = _gateway(spawn, broker, tmp_path)
    cli(gw, "staff", "add", "NV001", "Nguyễn Thị Thu Hà")
    cli(gw, "card", "assign", "NV001", "04A1B2C3")
    door = spawn(["attendance", "run"], door_env(broker, "door-1", tmp_path, CONGSO_CARD_BACKEND="pcsc",
                                                 CONGSO_FINGERPRINT_BACKEND="none"), name="door-1")
    card = VirtualCard("04A1B2C3")
    try:
        wait_roster(door, 1)
        wait_for(lambda: [json.loads(d or "{}").get("card") for d, in query(
            gw.db, "SELECT devices FROM nodes WHERE node_id='door-1'")] == ["ok"], 15, "the door's reader ok in health", door)
        card.insert()
        line = door.readline_until("feedback ")
        card.remove()
        assert line.split()[1:5] == ["accepted", "card", "04A1B2C3", "NV001"], line
        event_id = line.split()[5]
        wait_for(lambda: query(gw.db, "SELECT event_id, method, credential, staff_id FROM attendance_events")
                 == [(event_id, "card", "04A1B2C3", "NV001")], 10, "the tap stored", gw)
    finally:
        card.close()
    assert door.terminate() == 0 and gw.terminate() == 0


def test_enrol_from_the_office_then_identified_at_both_doors(spawn, broker, tmp_path):
    gw = _gateway(spawn, broker, tmp_path)
    cli(gw, "staff", "add", "NV007", "Lê Thị Hồng")
    cli(gw, "staff", "consent", "NV007", "--recorded-by", "Trần Văn Bình")  # no template without it
    emu1, emu2 = FingerprintEmulator(timing=0.2), FingerprintEmulator(timing=0)
    door1 = spawn(["attendance", "run"], door_env(broker, "door-1", tmp_path, CONGSO_FINGERPRINT_PORT=emu1.start(),
                                                  CONGSO_ATTENDANCE_ENROLL_TIMEOUT_S=5), name="door-1")
    door2 = spawn(["attendance", "run"], door_env(broker, "node-a", tmp_path, CONGSO_FINGERPRINT_PORT=emu2.start()),
                  name="node-a")
    try:
        door1.readline_until("roster ")
        door2.readline_until("roster ")
        wait_for(lambda: query(gw.db, "SELECT count(*) FROM nodes WHERE kind='attendance'")[0][0] == 2, 10,
                 "both doors registered", gw)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
        env["CONGSO_DATA_DIR"] = str(gw.data_dir)
        enrol = subprocess.Popen([sys.executable, "-m", "congso", "enroll", "--node", "door-1", "--staff", "NV007"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The person follows the door's LED and beeps.
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
        assert out.strip() == "enrolled NV007 at door-1 in slot 0; carrying it to node-a"
        assert emu1.slot_of("hong-index") == 0
        # Carried: exported at door-1, imported at node-a, slots recorded.
        wait_for(lambda: query(gw.db, "SELECT node_id, slot, staff_id FROM finger_slots ORDER BY node_id") == [
            ("door-1", 0, "NV007"), ("node-a", 0, "NV007")], 20, "the finger carried", gw)
        assert emu2.slot_of("hong-index") == 0
        wait_roster(door1, 1, fingers=1)
        wait_roster(door2, 1, fingers=1)

        for door, emu in ((door1, emu1), (door2, emu2)):
            emu.place("hong-index")
            line = door.readline_until("feedback ")
            emu.lift()
            assert line.split()[1:5] == ["accepted", "finger", "0", "NV007"], line
        time.sleep(0.3)
        emu2.place("stranger")
        assert door2.readline_until("feedback ") == "feedback refused finger - -"
        emu2.lift()
        wait_for(lambda: query(gw.db, "SELECT node_id, method, credential, staff_id FROM attendance_events ORDER BY node_id") == [
            ("door-1", "finger", "0", "NV007"), ("node-a", "finger", "0", "NV007")], 10, "two finger events", gw)

        # An enrolment nobody completes times out with a clear answer.
        r = run_congso("enroll", "--node", "door-1", "--staff", "NV007", CONGSO_DATA_DIR=str(gw.data_dir))
        assert r.returncode == 1 and "enrolment at door-1 failed: enroll failed: no finger within 5 s" in r.stderr
        r = run_congso("enroll", "--node", "door-1", "--staff", "NV404", CONGSO_DATA_DIR=str(gw.data_dir))
        assert r.returncode == 1 and "no active staff member 'NV404'" in r.stderr
    finally:
        emu1.stop()
        emu2.stop()


def test_killed_after_feedback_and_line_noise_nothing_lost(spawn, private_broker, tmp_path):
    gw = _gateway(spawn, private_broker, tmp_path)
    cli(gw, "staff", "add", "NV001", "Phạm Văn An")
    db = open_db(gw.db)
    staff.record_finger(db, "door-1", 5, "NV001", "door-1")
    db.conn.close()
    emu = FingerprintEmulator(timing=0)
    emu.enroll_directly("an-thumb", 5)
    env = door_env(private_broker, "door-1", tmp_path, CONGSO_FINGERPRINT_PORT=emu.start(),
                   CONGSO_ATTENDANCE_REPEAT_WINDOW_S=0.5)
    door = spawn(["attendance", "run"], env, name="door-1")
    try:
        wait_roster(door, 1, fingers=1)
        # Garbage on the line while the door polls: it resynchronises and goes on.
        emu.send_noise(200)
        emu.corrupt_replies(3)
        emu.noisy_replies(3)
        time.sleep(0.5)
        emu.send_noise(64)
        emu.place("an-thumb")
        first = door.readline_until("feedback ")
        emu.lift()
        assert first.split()[1:5] == ["accepted", "finger", "5", "NV001"], first
        wait_for(lambda: query(gw.db, "SELECT count(*) FROM attendance_events")[0][0] == 1, 10, "the first scan", gw)
        # Every garbled reply was sent and the door went on polling to a good scan.
        assert emu.faults_pending == 0 and door.alive()

        # Broker down: the door still answers; killed right after the green, the event survives.
        private_broker.stop()
        time.sleep(1)
        emu.place("an-thumb")
        second = door.readline_until("feedback accepted")
        door.kill()
        emu.lift()
        event_id = second.split()[5]
        private_broker.start()
        door = spawn(["attendance", "run"], env, name="door-1-again")
        wait_for(lambda: query(gw.db, "SELECT count(*) FROM attendance_events WHERE event_id=?", (event_id,))[0][0] == 1,
                 30, "the killed door's event", door)
        # ... and it works offline from boot: the roster came from its disk.
        time.sleep(1.0)
        emu.place("an-thumb")
        assert door.readline_until("feedback ").split()[1:5] == ["accepted", "finger", "5", "NV001"]
        emu.lift()
        wait_for(lambda: query(gw.db, "SELECT count(*) FROM attendance_events")[0][0] == 3, 10, "three scans", gw)
        assert query(gw.db, "SELECT count(DISTINCT event_id), count(*) FROM attendance_events") == [(3, 3)]
    finally:
        emu.stop()


def test_a_thousand_scans_with_the_broker_down_arrive_exactly_once(spawn, private_broker, tmp_path):
    gw = _gateway(spawn, private_broker, tmp_path)
    rows = "staff_id,name\n" + "".join(f"NV{i:03d},Cán bộ {i}\n" for i in range(20))
    (tmp_path / "staff.csv").write_text(rows, encoding="utf-8")
    cli(gw, "staff", "import", str(tmp_path / "staff.csv"))
    # The library call that `congso card assign` makes, without 20 start-ups of the CLI.
    db = open_db(gw.db)
    try:
        for i in range(20):
            staff.assign_card(db, f"NV{i:03d}", f"0A0B{i:04X}")
    finally:
        db.conn.close()
    factory = MockFactory()
    node, lines = in_process_door(private_broker, "door-1", tmp_path, factory, CONGSO_FINGERPRINT_BACKEND="none",
                                  CONGSO_ATTENDANCE_REPEAT_WINDOW_S=0, CONGSO_CLOCK_SYNCED="no")
    try:
        wait_for(lambda: all(node.roster.by_card(f"0A0B{i:04X}") for i in range(20)), 10, "every card in the roster")
        private_broker.stop()
        wait_for(lambda: not node.runtime.link.connected.is_set(), 10, "the door offline")
        verdicts = [node.credential("card", f"0A0B{n % 20:04X}") for n in range(1000)]
        assert verdicts == ["accepted"] * 1000
        assert node.runtime.outbox.depth() == 1000
        assert all(line.endswith(" clock_unsynced") for line in lines if line.startswith("feedback"))
        # The clock warning follows the last green: red and green alternate.
        wait_for(lambda: True in levels(factory.pin("GPIO18")), 10, "the clock warning's red")
        private_broker.start()
        wait_for(lambda: node.runtime.outbox.depth() == 0, 60, "every event acked", gw)
        assert query(gw.db, "SELECT count(*), count(DISTINCT event_id), sum(clock_synced), count(DISTINCT staff_id) "
                            "FROM attendance_events") == [(1000, 1000, 0, 20)]

        # Storage failure (the outbox cannot commit): the error pattern, never green.
        node.runtime.outbox.close()
        # Let the last clock warning (red and green alternating) finish first.
        settled = []
        wait_for(lambda: settled.append(len(factory.pin("GPIO17").states)) or settled[-3:] == [settled[-1]] * 3
                 and len(settled) >= 3, 10, "the green LED idle", interval=0.3)
        green_before = len(factory.pin("GPIO17").states)
        assert node.credential("card", "0A0B0001") == "error"
        assert len(factory.pin("GPIO17").states) == green_before
        assert lines[-1] == "feedback error card 0A0B0001 NV001 -"
        wait_for(lambda: levels(factory.pin("GPIO18")).count(True) >= 2, 5, "the red LED blinking")
    finally:
        node.stop()


def test_missing_devices_are_said_and_the_emulator_backend_runs(spawn, broker, tmp_path):
    gw = _gateway(spawn, broker, tmp_path)
    bare = spawn(["attendance", "run"], door_env(broker, "node-b", tmp_path, CONGSO_FINGERPRINT_PORT="/dev/ttyNOPE9"),
                 name="node-b")
    emulated = spawn(["attendance", "run"], door_env(broker, "node-c", tmp_path, CONGSO_FINGERPRINT_BACKEND="emulator"),
                     name="node-c")
    wait_for(lambda: "no fingerprint module: running with card only" in bare.tail(), 15, "the warning", bare)

    def devices(node):
        rows = query(gw.db, "SELECT devices FROM nodes WHERE node_id=?", (node,))
        return json.loads(rows[0][0]) if rows and rows[0][0] else {}

    wait_for(lambda: devices("node-b").get("fingerprint") == "missing", 15, "node-b's health", gw)
    wait_for(lambda: devices("node-c").get("fingerprint") == "ok", 15, "node-c's health", gw)
    assert "card" not in devices("node-c")  # [card] backend = none: not fitted, not "missing"
    r = run_congso("enroll", "--node", "node-b", "--staff", "NV001", CONGSO_DATA_DIR=str(gw.data_dir))
    assert r.returncode == 1  # NV001 unknown here; the door itself answers below
    cli(gw, "staff", "add", "NV001", "Phạm Văn An")
    r = run_congso("enroll", "--node", "node-b", "--staff", "NV001", CONGSO_DATA_DIR=str(gw.data_dir))
    assert r.returncode == 1 and "no recorded consent of NV001" in r.stderr, r.stderr  # asked of nobody
    cli(gw, "staff", "consent", "NV001", "--recorded-by", "Trần Văn Bình")
    r = run_congso("enroll", "--node", "node-b", "--staff", "NV001", CONGSO_DATA_DIR=str(gw.data_dir))
    assert r.returncode == 1 and "no fingerprint module on this door" in r.stderr, r.stderr
    assert bare.alive() and emulated.alive()
    assert bare.terminate() == 0 and emulated.terminate() == 0
