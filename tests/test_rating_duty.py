"""The officer takes the desk (nhận quầy) with a card tap at the kiosk.

Real pieces throughout: the gateway process builds ``state/duty`` from its
staff, cards and console users (set up with the CLI), a pcscd of the
tests' own with vsmartcard's vpcd reader, and a ``VirtualCard`` put on it.
One test runs ``congso rating run`` as a process and reads its screen with
``congso node screenshot``; the other runs the kiosk app in this process so
it can also vote by touch and see the short confirmation. The first test
is the order of takes and leaves between the kiosk and the console, on
``DeskDuty`` alone.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pygame
import pytest
from gpiozero.pins.mock import MockFactory

from congso.devices.virtualcard import VirtualCard
from congso.gateway import commands, duty as gateway_duty
from congso.gateway.db import open_db
from congso.rating_node import screens
from congso.rating_node.kiosk import Kiosk, Rules
from congso.rating_node.officer_card import DeskDuty, card_hash
from congso.ui import Renderer
from congso.ui import layout as L
from congso.vocab import levels

from conftest import fresh_broker, SITE, query, run_congso, start_gateway, wait_for
from test_rating_kiosk import Harness

OUT = Path(__file__).resolve().parent.parent / "test-out" / "rating"
DESK = "mot-cua-1"
SIZE = (1280, 720)
AN_UID, BINH_UID = "04A1B2C3", "04D4E5F6"
CITIZEN_UID = "0A0B0C0D"        # a card nobody at the office has (a citizen's bank card)
NO_DESK_UID = "0E0F1011"        # a staff member's card, but not an officer of this desk
AN = "Nguyễn Văn An"

# A broker of this module's own: what other modules' kiosks left queued for the
# gateway (votes made with no gateway running) must not reach these gateways.
broker = pytest.fixture(scope="module")(fresh_broker)


# -- the order of things, on DeskDuty alone ------------------------------------------

def state(version: int, holder: dict | None) -> dict:
    officers = [{"staff_id": "NV001", "name": AN, "desks": [DESK], "cards": [card_hash(SITE, AN_UID)]},
                {"staff_id": "NV002", "name": "Trần Thị Bình", "desks": [DESK], "cards": [card_hash(SITE, BINH_UID)]},
                {"staff_id": "NV009", "name": "Lê Văn Khác", "desks": ["mot-cua-2"], "cards": [card_hash(SITE, "0909")]}]
    return {"v": 1, "version": version, "desks": {DESK: holder}, "officers": officers}


def at(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def test_kiosk_taps_and_console_changes_in_either_order():
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
    acked: set[str] = set()
    d = DeskDuty(SITE, DESK, is_acked=acked.__contains__)
    d.adopt(state(1, None))
    assert d.tap(CITIZEN_UID).action is None and d.tap("0909").action is None  # another desk's officer too
    assert d.tap(AN_UID.lower()).action == "take"  # the UID's case does not matter

    # A tap, shown at once; the retained state from before it does not undo it.
    d.apply(d.tap(AN_UID), {"ts": at(t0), "event_id": "e1"})
    assert d.officer_name == AN
    assert not d.adopt(state(1, None)) and d.officer_id == "NV001"
    # The gateway applied it: its state agrees (same since).
    d.adopt(state(2, {"officer_id": "NV001", "officer_name": AN, "since": at(t0), "via": "card:kiosk-1"}))
    assert d.officer_id == "NV001" and not d.pending

    # The console gives the desk to Bình after the tap: a later since wins.
    d.apply(d.tap(AN_UID), {"ts": at(t0 + timedelta(minutes=1)), "event_id": "e2"})  # An leaves
    assert d.officer_id is None
    binh = {"officer_id": "NV002", "officer_name": "Trần Thị Bình", "since": at(t0 + timedelta(minutes=2)), "via": "console"}
    assert d.adopt(state(3, binh)) and d.officer_id == "NV002"

    # A kiosk tap after a console take: the state showing the console's holder is older than the tap.
    d.apply(d.tap(AN_UID), {"ts": at(t0 + timedelta(minutes=3)), "event_id": "e3"})
    assert d.officer_id == "NV001"
    assert not d.adopt(state(3, binh)) and d.officer_id == "NV001"

    # A leave: "nobody" in a state before the gateway acked it proves nothing ...
    d.adopt(state(4, {"officer_id": "NV001", "officer_name": AN, "since": at(t0 + timedelta(minutes=3))}))
    d.apply(d.tap(AN_UID), {"ts": at(t0 + timedelta(minutes=4)), "event_id": "e4"})
    acked.add("e4")
    d.check_ack(6)
    # ... after the ack it is the gateway's word (a console leave, or our own leave applied).
    d.apply(d.tap(AN_UID), {"ts": at(t0 + timedelta(minutes=5)), "event_id": "e5"})  # An takes again
    assert not d.adopt(state(5, None)) and d.officer_id == "NV001"   # not yet acked: stale
    acked.add("e5")
    assert d.adopt(state(6, None)) and d.officer_id is None           # a console leave after our take

    # A tap the gateway refused (no new state comes): its last state stands after SETTLE_S.
    d.apply(d.tap(BINH_UID), {"ts": at(t0 + timedelta(minutes=6)), "event_id": "e6"})
    assert d.officer_id == "NV002"
    acked.add("e6")
    d.check_ack(10)
    assert not d.check_ack(11) and d.officer_id == "NV002"
    assert d.check_ack(10 + 5.1) and d.officer_id is None and not d.pending


def test_a_tap_the_gateway_has_not_seen_survives_a_restart():
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
    d = DeskDuty(SITE, DESK)
    d.adopt(state(1, None))
    d.apply(d.tap(AN_UID), {"ts": at(t0), "event_id": "e1"})
    kept = json.loads(json.dumps(d.snapshot()))
    # Rebooted offline: the state kept on disk is from before the tap; the tap is still in the outbox.
    again = DeskDuty(SITE, DESK, is_acked=lambda eid: False)
    again.adopt(state(1, None))
    again.restore(kept)
    assert again.officer_id == "NV001" and again.pending
    # The gateway's state with the tap applied ends it.
    again.adopt(state(2, {"officer_id": "NV001", "officer_name": AN, "since": at(t0)}))
    assert not again.pending and again.snapshot() is None
    # A snapshot from a tap the gateway has acked: the state on disk is the word.
    later = DeskDuty(SITE, DESK, is_acked=lambda eid: True)
    later.adopt(state(3, None))
    later.restore(kept)
    assert later.officer_id is None and not later.pending
    DeskDuty(SITE, DESK).restore({"garbage": 1})  # a damaged file: ignored


# -- what the kiosk shows (pure layouts, drawn by the real renderer) -----------------

def kiosk_with_duty(now=0.0) -> Kiosk:
    k = Kiosk(levels.scale(3), DESK, lambda fields: fields, Rules(lockout_s=1, thanks_s=1),
              wall=lambda: datetime.now(timezone.utc))
    k.set_duty({"officer_id": "NV001", "officer_name": AN})
    return k


@pytest.mark.parametrize("size", [(1280, 720), (800, 480), (720, 1280)])
def test_the_holder_and_the_confirmation_on_screen(size, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    pygame.font.init()
    surface = pygame.Surface(size)
    r = Renderer(surface)
    k = kiosk_with_duty()
    k.scan("000.00.12.H56-261201-0001", 0.0)
    idle = screens.layout(k.view(0.0), size)
    r.draw(idle.instructions)
    texts = {d.tag: " ".join(d.text.split()) for d in r.drawn_text}  # as drawn, on one or two lines
    assert texts["officer"] == f"Cán bộ tiếp nhận: {AN} · Hồ sơ: 000.00.12.H56-261201-0001"
    assert len(idle.targets) == 3
    k.notify(screens.TOOK_DESK, "duty", 0.0, AN)
    shown = screens.layout(k.view(0.5), size)
    r.draw(shown.instructions)
    texts = {d.tag: d.text.replace("\n", " ") for d in r.drawn_text}
    assert (texts["notice"], texts["notice_detail"]) == ("Đã nhận quầy", AN) and shown.targets == []
    for d in r.drawn_text:
        assert L.contains(d.box, d.ink) and "…" not in d.text, d
    assert tuple(surface.get_at((size[0] // 2, L.px(125, size))))[:3] == screens.SEND
    # A press while it shows is ignored (no button is on screen); after notice_s the buttons are back.
    assert k.press(0, 0.6, "button") == "ignored"
    assert k.view(k.rules.notice_s + 0.01).notice == "" and k.press(0, k.rules.notice_s + 0.01, "button") == "vote"


def test_a_session_wins_for_its_vote_then_the_holder_again():
    k = kiosk_with_duty()
    sent = []
    k.commit = lambda fields: sent.append(fields) or fields
    now = datetime.now(timezone.utc)
    k.set_session({"session_id": "s-1", "desk_id": DESK, "officer_id": "NV003", "officer_name": "Lê Thị Cúc",
                   "dossier_code": None, "opened_at": now.isoformat(), "expires_at": (now + timedelta(minutes=5)).isoformat()})
    assert k.view(0.0).officer_name == "Lê Thị Cúc" and k.view(0.0).duty_name is None
    k.scan("000.00.12.H56-261201-0002", 0.0)
    k.press(0, 0.0, "touch")
    k.press(1, 5.0, "touch")
    assert [(f["officer_id"], f["session_id"], f["dossier_code"]) for f in sent] == [
        ("NV003", "s-1", "000.00.12.H56-261201-0002"), ("NV001", None, None)]
    k.tick(6.5)  # the thank-you over
    assert k.scan(None, 6.5) == "bad scan" and k.view(6.6).notice == "Mã không hợp lệ, vui lòng quét lại"


# -- with the real gateway and pcscd ---------------------------------------------------

def cli(env, *args, input=None):
    r = run_congso(*args, input=input, **env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture
def office(spawn, broker, tmp_path):
    """A gateway whose state/duty lists An and Bình for desk mot-cua-1, each with a card."""
    data = tmp_path / "gateway"
    gw = start_gateway(spawn, broker, data)
    gw.db, gw.data_dir = data / "gateway.sqlite", data
    gw.env = broker.env("gateway", data)
    for staff_id, name, uid, user in (("NV001", AN, AN_UID, "an"), ("NV002", "Trần Thị Bình", BINH_UID, "binh")):
        cli(gw.env, "staff", "add", staff_id, name)
        cli(gw.env, "card", "assign", staff_id, uid)
        cli(gw.env, "web", "user", "add", user, "--role", "officer", "--staff", staff_id, "--desk", DESK,
            input="mat-khau-can-bo\n")
    cli(gw.env, "staff", "add", "NV005", "Phạm Thị Công Dân")   # a card, but no desk: a citizen's to the kiosk
    cli(gw.env, "card", "assign", "NV005", NO_DESK_UID)
    yield gw
    gw.terminate()


def wait_duty_state(kiosk_data: Path, proc=None) -> None:
    """The kiosk holds a state/duty with An's card (kept on disk as it arrived)."""
    path = kiosk_data / "state" / "duty.json"
    wait_for(lambda: path.exists() and card_hash(SITE, AN_UID) in path.read_text(), 20, "state/duty at the kiosk", proc)


def duty_rows(db) -> list[tuple]:
    return query(db, "SELECT action, staff_id, outcome FROM duty_events ORDER BY ts, seq")


def tap(card: VirtualCard, uid: str) -> None:
    card.insert(uid)
    time.sleep(0.3)
    card.remove()


def test_card_taps_at_the_kiosk_process_take_and_leave_the_desk(office, broker, spawn, tmp_path, pcscd):
    data = tmp_path / "kiosk-proc"
    env = broker.env("kiosk-1", data, CONGSO_RATING_DESK_ID=DESK, CONGSO_DISPLAY_WIDTH=1280, CONGSO_DISPLAY_HEIGHT=720,
                     SDL_VIDEODRIVER="dummy", GPIOZERO_PIN_FACTORY="mock", CONGSO_RATING_OFFICER_CARD="true",
                     CONGSO_CARD_BACKEND="pcsc", CONGSO_CARD_DEBOUNCE_S="1")
    kiosk = spawn(["rating", "run"], env, name="kiosk")
    db = open_db(office.db)

    def health() -> dict:
        rows = query(office.db, "SELECT last_health FROM nodes WHERE node_id='kiosk-1'")
        return json.loads(rows[0][0]) if rows and rows[0][0] else {}

    def screen() -> list[str]:
        result = commands.wait_reply(db, commands.queue(db, "kiosk-1", "screenshot", {}), 15)
        return [t.replace("\n", " ") for t in result["texts"]]

    card = VirtualCard(AN_UID)
    try:
        wait_duty_state(data, kiosk)
        wait_for(lambda: health().get("devices", {}).get("card") == "ok", 20, "the kiosk's reader ok in health", kiosk)
        assert not any(t.startswith("Cán bộ tiếp nhận") for t in screen())

        tap(card, AN_UID)
        wait_for(lambda: query(office.db, "SELECT officer_id, officer_name, via FROM desk_duty")
                 == [("NV001", AN, "card:kiosk-1")], 15, "An holds the desk at the gateway", kiosk)
        assert duty_rows(office.db) == [("take", "NV001", "taken")]
        (event,) = query(office.db, "SELECT payload FROM duty_events")
        assert json.loads(event[0])["card_hash"] == card_hash(SITE, AN_UID)  # the UID never leaves the kiosk
        assert AN_UID not in event[0]
        # Right after the tap the confirmation covers the screen for two seconds, then the name shows.
        first = screen()
        assert screens.TOOK_DESK in first or f"Cán bộ tiếp nhận: {AN}" in first, first
        wait_for(lambda: f"Cán bộ tiếp nhận: {AN}" in screen(), 10, "An's name on the kiosk", kiosk)
        out = run_congso("node", "screenshot", "kiosk-1", "-o", str(tmp_path / "duty.png"), **office.env)
        assert out.returncode == 0, out.stderr
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "duty-process.png").write_bytes((tmp_path / "duty.png").read_bytes())
        # The retained state the gateway publishes names the holder too.
        assert gateway_duty.officer_at(db, DESK) == "NV001"

        # A citizen's card (no desk of theirs here): nothing recorded, nothing changes.
        tap(card, CITIZEN_UID)
        wait_for(lambda: health().get("citizen_cards") == 1, 10, "the citizen's tap seen and ignored", kiosk)
        assert len(duty_rows(office.db)) == 1 and f"Cán bộ tiếp nhận: {AN}" in screen()

        # An again, past [card] debounce_s: she leaves the desk.
        time.sleep(1.1)
        tap(card, AN_UID)
        wait_for(lambda: query(office.db, "SELECT count(*) FROM desk_duty") == [(0,)], 15, "the desk free", kiosk)
        assert duty_rows(office.db) == [("take", "NV001", "taken"), ("leave", "NV001", "left")]
        wait_for(lambda: not any(t.startswith("Cán bộ tiếp nhận") for t in screen()), 10, "the name gone", kiosk)
        wait_for(lambda: health().get("on_duty") is None, 5, "nobody on duty in the kiosk's health", kiosk)
    finally:
        card.close()
    assert kiosk.terminate() == 0, kiosk.tail()


def test_votes_while_an_officer_holds_the_desk_are_theirs(office, broker, tmp_path, monkeypatch, pcscd):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    data = tmp_path / "kiosk"
    settings = broker.settings("kiosk-1", data, CONGSO_RATING_DESK_ID=DESK, CONGSO_DISPLAY_WIDTH=SIZE[0],
                               CONGSO_DISPLAY_HEIGHT=SIZE[1], CONGSO_RATING_OFFICER_CARD="true",
                               CONGSO_CARD_BACKEND="pcsc", CONGSO_CARD_DEBOUNCE_S="1", CONGSO_RATING_LOCKOUT_S=0.3,
                               CONGSO_RATING_THANKS_S=0.2, CONGSO_RATING_PRESS_GUARD_S=0.05)
    k = Harness(settings, MockFactory())
    card = VirtualCard(AN_UID)
    db = open_db(office.db)

    def votes() -> list[dict]:
        return [json.loads(r[0]) for r in query(office.db, "SELECT payload FROM rating_events ORDER BY seq")]

    def vote(level: str) -> dict:
        n = len(votes())
        wait_for(lambda: k.app.kiosk.screen == "idle" and not k.app.kiosk.view(time.monotonic()).locked
                 and "notice" not in k.texts(), 5, "the buttons back")
        k.touch(level)
        wait_for(lambda: len(votes()) == n + 1, 10, "the vote at the gateway")
        return votes()[-1]

    try:
        wait_duty_state(data)
        wait_for(lambda: k.app.card.status == "ok", 10, "the reader")
        k.settle()
        tap(card, AN_UID)
        tap(card, AN_UID)  # lifted and put down again within [card] debounce_s: the same tap, not a leave
        wait_for(lambda: "notice" in k.texts(), 5, "the confirmation")
        assert (k.texts()["notice"], k.texts()["notice_detail"]) == (screens.TOOK_DESK, AN) == ("Đã nhận quầy", AN)
        assert k.pixel((SIZE[0] // 2, 130)) == screens.SEND
        k.screenshot("duty-taken")
        wait_for(lambda: "notice" not in k.texts(), 5, "back to the question")
        assert k.texts()["officer"] == f"Cán bộ tiếp nhận: {AN}"
        k.screenshot("duty-idle")
        assert vote("level:0")["officer_id"] == "NV001"
        assert duty_rows(office.db) == [("take", "NV001", "taken")]

        # A desk session from the console still wins for its one vote.
        cli(office.env, "desk", "open", "--desk", DESK, "--officer", "NV002")
        wait_for(lambda: k.app.kiosk.current_session() is not None, 10, "the session")
        k.settle()
        assert k.texts()["officer"] == "Cán bộ phục vụ: Trần Thị Bình"
        assert (v := vote("level:1"))["officer_id"] == "NV002" and v["session_id"] is not None
        wait_for(lambda: k.app.kiosk.session is None, 10, "the session used and cleared")
        assert vote("level:0")["officer_id"] == "NV001"

        # The console gives the desk to Bình after An's tap: the kiosk follows (a later since).
        gateway_duty.take(db, DESK, "NV002", datetime.now(timezone.utc).astimezone())
        wait_for(lambda: k.app.duty.officer_id == "NV002", 10, "the console's take at the kiosk")
        k.settle()
        assert k.texts()["officer"] == "Cán bộ tiếp nhận: Trần Thị Bình"
        assert vote("level:1")["officer_id"] == "NV002"

        # An taps after the console's take: she holds it again, at the kiosk and at the gateway.
        time.sleep(1.1)
        tap(card, AN_UID)
        wait_for(lambda: query(office.db, "SELECT officer_id FROM desk_duty") == [("NV001",)], 10, "An again")
        wait_for(lambda: k.app.kiosk.duty and k.app.kiosk.duty["officer_id"] == "NV001" and not k.app.duty.pending,
                 10, "the kiosk agrees with the gateway")
        assert vote("level:0")["officer_id"] == "NV001"

        # A citizen's card: no event, no message, the officer stays.
        before = query(office.db, "SELECT count(*) FROM duty_events")
        tap(card, NO_DESK_UID)
        wait_for(lambda: k.app.citizen_cards == 1, 5, "the citizen's tap")
        k.settle()
        assert "notice" not in k.texts() and k.texts()["officer"] == f"Cán bộ tiếp nhận: {AN}"
        assert query(office.db, "SELECT count(*) FROM duty_events") == before
        assert k.app.runtime.outbox.depth() == 0
    finally:
        card.close()
        k.close()


def test_no_reader_plugged_in_is_missing_in_health_and_the_kiosk_goes_on(broker, tmp_path, monkeypatch, pcscd):
    """pcscd runs but the reader named in [card] reader is not plugged in (only vpcd's is)."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    settings = broker.settings("kiosk-1", tmp_path / "kiosk", CONGSO_RATING_DESK_ID=DESK, CONGSO_RATING_OFFICER_CARD="true",
                               CONGSO_CARD_BACKEND="pcsc", CONGSO_CARD_READER="ACR122", CONGSO_DISPLAY_WIDTH=SIZE[0],
                               CONGSO_DISPLAY_HEIGHT=SIZE[1])
    k = Harness(settings, MockFactory())
    try:
        wait_for(lambda: k.app.card.last_error is not None, 10, "the reader looked for")
        assert k.app._devices()["card"] == "missing" and "ACR122" in k.app.card.last_error
        assert k.app.runtime.health_payload()["devices"]["card"] == "missing"
        k.touch("level:2")  # the kiosk goes on (the reasons screen: no vote sent with no gateway to take it)
        assert k.app.kiosk.screen == "reasons" and k.app.card.running
        k.touch("back")
    finally:
        k.close()
