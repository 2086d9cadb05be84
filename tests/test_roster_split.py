"""The roster at the size of a merged commune: 2,000 staff with cards and fingers at 4 doors.

Before: one retained ``state/roster`` carried everybody's cards and slots;
past ~430-600 staff it went over the 64 KiB limit, the publish failed at
every retry and the doors kept an empty roster; and every node, the TVs in
the public hall too, received every card UID. Now each door reads its own
``state/roster/<node>/<part>`` and the public ``state/roster`` carries no
credential.
"""

from __future__ import annotations

import json
import re
from datetime import datetime


from gpiozero.pins.mock import MockFactory

from conftest import SITE, query, start_gateway, wait_for
from congso.attendance_node.node import AttendanceNode
from congso.attendance_node.roster import RosterParts
from congso.gateway import staff, state
from congso.gateway.db import open_db
from congso.protocol import messages, settings as settings_mod, topics
from mqtt_helpers import RawClient

N = 2000
DOORS = ["door-1", "node-a", "node-b", "node-c"]
UID_RE = re.compile(r"04[0-9A-F]{6}")


def uid(n: int) -> str:
    return f"{0x04000000 + n:08X}"


def _fill(db, n: int = N) -> None:
    count = n
    lines = ["Mã NV;Họ và tên;Phòng ban"] + [f"NV{n:05d};Nguyễn Thị Thu Hà {n};Văn phòng - Thống kê" for n in range(count)]
    assert staff.import_csv(db, "\r\n".join(lines).encode("utf-8")) == (count, 0)
    with db.conn:
        db.conn.executemany("INSERT INTO staff_cards(uid, staff_id, assigned_at) VALUES (?,?,?)",
                            [(uid(n), f"NV{n:05d}", "2026-11-23T08:00:00+07:00") for n in range(count)])
        db.conn.executemany(
            "INSERT INTO finger_slots(node_id, slot, staff_id, enrolled_at, source_node) VALUES (?,?,?,?,?)",
            [(door, n, f"NV{n:05d}", "2026-11-23T08:00:00+07:00", "door-1") for door in DOORS for n in range(count)])


def _ctx():
    return state.Context(SITE, "Asia/Ho_Chi_Minh", datetime.now().astimezone())


def test_the_builder_splits_every_door_under_64_kib_and_the_public_roster_holds_no_credential(tmp_path):
    db = open_db(tmp_path / "gateway.sqlite")
    _fill(db)
    built = staff.build_roster(db, _ctx())
    public = messages.encode("roster", {"v": 1, "version": 1, **built.pop("roster")})
    assert not UID_RE.search(public.decode()) and json.loads(public)["staff_count"] == N
    doors = {}
    for name, payload in built.items():
        data = messages.encode(name, {"v": 1, "version": 1, **payload})
        assert len(data) <= messages.MAX_PAYLOAD
        node = topics.DOOR_ROSTER_NAME_RE.match(name).group(1)
        doors.setdefault(node, RosterParts(node))
        roster = doors[node].add(messages.decode(name, data))
    assert sorted(doors) == DOORS
    roster = doors["door-1"].complete()
    assert roster.by_card(uid(1999)).staff_id == "NV01999" and roster.by_slot(1999).staff_id == "NV01999"
    assert roster.staff_count == N and len(roster.slots()) == N

    # One card more re-publishes one part of each door, not the whole roster.
    with db.conn:
        db.conn.execute("UPDATE staff_cards SET uid = '04FFFFFF' WHERE uid = ?", (uid(7),))
    again = staff.build_roster(db, _ctx())
    changed = [n for n in built if again[n] != built[n]]
    assert len(changed) == len(DOORS)


def test_2000_staff_reach_the_door_and_no_tv_sees_a_card(spawn, private_broker, tmp_path):
    broker = private_broker
    data = tmp_path / "gateway"
    _fill(open_db(data / "gateway.sqlite"))
    gw = start_gateway(spawn, broker, data)
    env = broker.env("door-1", tmp_path / "door-1", GPIOZERO_PIN_FACTORY="mock", CONGSO_CARD_BACKEND="none",
                     CONGSO_FINGERPRINT_BACKEND="none", CONGSO_GPIO_GREEN_LED="GPIO17", CONGSO_GPIO_RED_LED="GPIO18")
    lines: list[str] = []
    door = AttendanceNode(settings_mod.load(environ=env), pin_factory=MockFactory(), out=lines.append,
                          with_card=False, with_finger=False)
    door.start()
    try:
        wait_for(lambda: any(line.startswith("roster ") and f" staff {N} fingers {N}" in line for line in lines),
                 60, "the whole roster at the door", gw)
        assert door.credential("card", uid(1999)) == "accepted"
        wait_for(lambda: query(data / "gateway.sqlite", "SELECT staff_id FROM attendance_events WHERE credential = ?",
                               (uid(1999),)) == [("NV01999",)], 20, "the check-in of staff #1999", gw)

        # Nothing the gateway retained is over the contract's limit.
        sizes = query(data / "gateway.sqlite", "SELECT name, length(CAST(payload AS BLOB)) FROM published_state")
        assert sizes and all(size <= messages.MAX_PAYLOAD for _, size in sizes), sizes
        assert len([n for n, _ in sizes if n.startswith("roster/door-1/")]) >= 2  # it had to be split

    finally:
        door.stop()
    assert gw.terminate() == 0


def test_a_tv_reading_all_the_state_it_may_sees_no_card_and_no_slot(spawn, private_broker, tmp_path):
    broker = private_broker
    acl = (broker.conf / "acl").read_text()
    assert f"topic read congso/{SITE}/state/#" not in acl
    data = tmp_path / "gateway"
    _fill(open_db(data / "gateway.sqlite"), n=50)
    gw = start_gateway(spawn, broker, data)
    wait_for(lambda: query(data / "gateway.sqlite", "SELECT count(*) FROM published_state WHERE name LIKE 'roster/%'")
             [0][0] == len(DOORS), 20, "every door's roster published", gw)
    tv = RawClient(broker.port, "tv-1", broker.credentials["tv-1"], client_id="tv-1")
    try:
        tv.subscribe(topics.all_state(SITE))
        # Retained messages come in the order of the subscriptions: once the
        # second one's copy of state/roster is here, the first one's are too.
        tv.subscribe(topics.state(SITE, "roster"))
        seen = []
        while sum(1 for m in seen if m.topic == topics.state(SITE, "roster")) < 2:
            seen.append(tv.messages.get(timeout=20))
        assert not [m.topic for m in seen if "/state/roster/" in m.topic]
        assert not [m.topic for m in seen if UID_RE.search(m.payload.decode("utf-8", "replace"))]
        public = json.loads(next(m.payload for m in seen if m.topic == topics.state(SITE, "roster")))
        assert public["staff"] == [] and public["per_door"] and public["staff_count"] == 50
    finally:
        tv.client.disconnect()
    assert gw.terminate() == 0


def test_a_door_cut_off_while_its_split_grows_boots_with_the_last_whole_roster(tmp_path):
    from congso.attendance_node.roster import from_cache

    db = open_db(tmp_path / "gateway.sqlite")
    _fill(db, n=300)
    entries = staff.door_entries(staff.roster(db), "door-1")

    def parts(buckets):
        return [messages.validate("door_roster", {"v": 1, "version": 1, "node_id": "door-1", "part": k,
                                                  "parts": len(buckets), "staff_count": 300, "staff": b})
                for k, b in enumerate(buckets)]

    old = parts(staff.split_parts(entries, budget=20 * 1024))
    new = parts(staff.split_parts(entries, at_least=len(old) + 1, budget=20 * 1024))
    keep = tmp_path / "door-1" / "roster-whole.json"
    _, received = from_cache({}, "door-1", keep)
    for part in old:
        roster = received.add(part)
    assert roster.by_card(uid(299)).staff_id == "NV00299"
    # The power goes while the bigger split comes in: the kept parts are of two splits.
    cached = {f"roster-door-1-{p['part']}": p for p in old + new[:len(old)]}
    assert from_cache(cached, "door-1")[0].by_card(uid(299)) is None  # no whole split among them
    roster, _ = from_cache(cached, "door-1", keep)
    assert roster.by_card(uid(299)).staff_id == "NV00299" and roster.staff_count == 300
