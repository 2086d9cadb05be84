"""The kiosk end to end: real broker, real gateway process, the real kiosk app.

The kiosk runs in this test process (SDL dummy video, gpiozero MockFactory
pins) so the test can use its real input paths: a FINGERDOWN event posted
into pygame's queue at a button's coordinates (from the layout's own hit
targets), and a button pin driven low and high. What the kiosk sends goes
through the real broker to the real gateway, and the assertions read the
gateway's database. One test runs `congso rating run` as a process.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import pygame
import pytest
from gpiozero.pins.mock import MockFactory

from congso.rating_node import screens
from congso.rating_node.app import KioskApp

from conftest import query, run_congso, start_gateway, wait_for
from rating_helpers import add_staff

OUT = Path(__file__).resolve().parent.parent / "test-out" / "rating"
BUTTONS = ["GPIO17", "GPIO27", "GPIO22"]
LEDS = ["GPIO23", "GPIO24", "GPIO25"]
DESK = "mot-cua-1"
SIZE = (1280, 720)


@pytest.fixture
def gateway(spawn, broker, tmp_path):
    data = tmp_path / "gateway"
    proc = start_gateway(spawn, broker, data, CONGSO_SITE_NAME="UBND xã Kỳ Châu")
    proc.db = data / "gateway.sqlite"
    proc.data_dir = data
    yield proc
    proc.terminate()


class Harness:
    """A KioskApp on its own thread, and the ways a citizen touches it."""

    def __init__(self, settings, factory):
        self.factory = factory
        self.app = KioskApp(settings, pin_factory=factory)
        self.thread = threading.Thread(target=self.app.run, name="kiosk-ui", daemon=True)
        self.thread.start()
        assert self.app.ready.wait(20), "kiosk did not draw its first frame"

    def settle(self):
        """Every input posted so far has been handled and the frame redrawn."""
        for _ in range(2):
            self.app.call(lambda: None)

    def touch(self, action: str, mouse_copy: bool = False) -> None:
        x, y = screens.center(self.app.screen, action)
        pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, x=x / SIZE[0], y=y / SIZE[1], dx=0.0, dy=0.0,
                                             touch_id=1, finger_id=0, pressure=1.0))
        if mouse_copy:  # what SDL makes from the same touch when SDL_TOUCH_MOUSE_EVENTS is on
            pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=1, touch=True))
        self.settle()

    def button(self, index: int) -> None:
        pin = self.factory.pin(BUTTONS[index])
        pin.drive_low()
        time.sleep(0.02)
        pin.drive_high()
        self.settle()

    def leds(self) -> list[bool]:
        return [bool(self.factory.pin(p).state) for p in LEDS]

    def texts(self) -> dict[str, str]:
        return self.app.call(lambda: {d.tag: d.text for d in self.app.renderer.drawn_text})

    def pixel(self, point) -> tuple[int, int, int]:
        return self.app.call(lambda: tuple(self.app.display.surface.get_at(point))[:3])

    def screenshot(self, name: str) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self.app.call(lambda: self.app.display.save_screenshot(OUT / f"{name}.png"))

    def wait_screen(self, screen: str, timeout: float = 10) -> None:
        wait_for(lambda: self.app.kiosk.screen == screen, timeout, f"the {screen} screen")
        self.settle()

    def close(self):
        self.app.stop()
        self.thread.join(15)
        assert not self.thread.is_alive()


@pytest.fixture
def make_kiosk(broker, tmp_path, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    made: list[Harness] = []

    def make(the_broker=broker, **rating) -> Harness:
        env = {"CONGSO_RATING_DESK_ID": DESK, "CONGSO_DISPLAY_WIDTH": SIZE[0], "CONGSO_DISPLAY_HEIGHT": SIZE[1],
               "CONGSO_GPIO_BUTTONS": ",".join(BUTTONS), "CONGSO_GPIO_BUTTON_LEDS": ",".join(LEDS),
               "CONGSO_RATING_LOCKOUT_S": 1.5, "CONGSO_RATING_THANKS_S": 0.5, "CONGSO_RATING_PRESS_GUARD_S": 0.1}
        env.update({f"CONGSO_RATING_{k.upper()}": v for k, v in rating.items()})
        settings = the_broker.settings("kiosk-1", tmp_path / "kiosk", **env)
        h = Harness(settings, MockFactory())
        made.append(h)
        assert h.app.runtime.link.wait_connected(10)
        return h

    yield make
    for h in made:
        h.close()


def votes(db) -> list[dict]:
    rows = query(db, "SELECT payload FROM rating_events ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def test_touch_and_button_votes_with_lockout_and_burst_flag(gateway, make_kiosk):
    k = make_kiosk()
    assert k.leds() == [True, True, True]  # ready: every button lit
    k.screenshot("idle")
    (x, y, w, h), _ = k.app.screen.targets[0]
    green = (x + 20, y + h // 2)  # inside the very-satisfied button, left of its face
    assert k.pixel(green) == (46, 160, 67)
    assert k.texts()["question"] == "Ông/Bà có hài lòng với sự phục vụ của cán bộ?"

    # One touch (with the mouse click SDL would make from it) is one vote.
    k.touch("level:0", mouse_copy=True)
    assert k.app.kiosk.screen == "thanks" and k.texts()["thanks"] == "Cảm ơn Ông/Bà đã đánh giá!"
    assert k.leds() == [True, False, False]  # the chosen level stays lit
    k.screenshot("thanks")
    # The thank-you is on screen: the vote is already in the outbox or at the gateway.
    # (It may be in both for a moment: stored at the gateway, the ack on its way.)
    assert len({e.event_id for e in k.app.runtime.outbox.after(0, 10)} | {v["event_id"] for v in votes(gateway.db)}) == 1

    # During the lockout: three presses, none counted, the screen says "please wait".
    time.sleep(0.15)  # past the press guard: these are new presses, not the touch again
    for i in range(3):
        k.button(2)
        time.sleep(0.12)
    k.wait_screen("idle")
    assert k.app.kiosk._lockout_presses == 3, (k.app.kiosk.ignored, k.app.kiosk._lockout_presses)
    assert k.app.kiosk.view(time.monotonic()).locked and k.texts()["hint"] == "Vui lòng chờ giây lát"
    assert k.leds() == [False, False, False]
    assert k.pixel(green) == screens.LOCKED
    k.screenshot("locked")
    wait_for(lambda: not k.app.kiosk.view(time.monotonic()).locked, 5, "the lockout to end")
    k.settle()
    assert k.leds() == [True, True, True]

    # The next vote comes right after a lockout full of presses: flagged.
    k.button(1)
    wait_for(lambda: len(votes(gateway.db)) == 2, 10, "two votes at the gateway")
    first, second = votes(gateway.db)
    assert (first["level"], first["source"], first["burst"], first["session_id"]) == ("very_satisfied", "touch", False, None)
    assert (second["level"], second["source"], second["burst"]) == ("satisfied", "button", True)
    assert first["desk_id"] == second["desk_id"] == DESK and first["reasons"] == []
    wait_for(lambda: k.app.runtime.outbox.depth() == 0, 10, "acks")
    # No waiting to see that no third vote comes: every vote the kiosk made
    # is counted and committed to its outbox before the thank-you, and the
    # gateway acks only what it has stored. An empty outbox is the end.
    assert len(votes(gateway.db)) == 2 and k.app.kiosk.votes == 2


def test_reasons_flow_send_and_timeout(gateway, make_kiosk):
    k = make_kiosk(reasons_timeout_s=4, lockout_s=0.5, thanks_s=0.3)
    k.touch("level:2")
    assert k.app.kiosk.screen == "reasons"
    assert k.leds() == [False, False, True]
    k.touch("reason:thoi_gian")
    k.touch("reason:thai_do")
    k.touch("reason:thoi_gian")  # ticked again: off
    texts = k.texts()
    assert texts["reason:thai_do"] == "Thái độ của cán bộ chưa tốt" and texts["send"] == "Gửi"
    k.screenshot("reasons")
    assert votes(gateway.db) == [] and k.app.runtime.outbox.depth() == 0  # nothing sent before Gửi
    time.sleep(0.15)  # a second tap of the level button landing on Gửi is ignored (press guard)
    k.touch("send")
    assert k.app.kiosk.screen == "thanks"
    wait_for(lambda: len(votes(gateway.db)) == 1, 10, "the vote with its reasons")
    assert votes(gateway.db)[0]["reasons"] == ["thai_do"] and votes(gateway.db)[0]["level"] == "dissatisfied"

    # Nobody presses Gửi: after the timeout the vote goes with what was ticked.
    wait_for(lambda: not k.app.kiosk.view(time.monotonic()).locked and k.app.kiosk.screen == "idle", 5, "idle")
    k.touch("level:2")
    k.touch("reason:phi")
    k.touch("reason:cong_khai")
    wait_for(lambda: len(votes(gateway.db)) == 2, 15, "the vote sent by the timeout")
    assert votes(gateway.db)[1]["reasons"] == ["cong_khai", "phi"]
    (row,) = query(gateway.db, "SELECT reasons FROM rating_events WHERE seq = 2")
    assert json.loads(row[0]) == ["cong_khai", "phi"]


def test_desk_session_bound_then_cleared(gateway, make_kiosk, broker):
    add_staff(gateway.db, {"NV003": "Lê Thị Cúc"})
    k = make_kiosk(lockout_s=0.5, thanks_s=0.3)
    env = broker.env("gateway", gateway.data_dir)
    out = run_congso("desk", "open", "--desk", DESK, "--officer", "NV003", "--dossier", "H23-261124-0007", **env)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: k.app.kiosk.current_session() is not None, 10, "the session at the kiosk")
    k.settle()
    assert k.texts()["officer"] == "Cán bộ phục vụ: Lê Thị Cúc  ·  Hồ sơ: H23-261124-0007"
    k.screenshot("session")

    k.touch("level:1")
    wait_for(lambda: len(votes(gateway.db)) == 1, 10, "the vote")
    vote = votes(gateway.db)[0]
    session_id = query(gateway.db, "SELECT session_id FROM desk_sessions")[0][0]
    assert (vote["session_id"], vote["officer_id"], vote["dossier_code"]) == (session_id, "NV003", "H23-261124-0007")
    # The vote closes the session at the gateway, which clears the retained topic.
    wait_for(lambda: k.app.kiosk.session is None, 10, "the session cleared at the kiosk")
    assert query(gateway.db, "SELECT closed_by FROM desk_sessions") == [("vote",)]
    wait_for(lambda: k.app.kiosk.screen == "idle" and not k.app.kiosk.view(time.monotonic()).locked, 5, "idle")
    k.settle()
    assert "officer" not in k.texts()

    # The next vote counts for the desk alone.
    k.touch("level:0")
    wait_for(lambda: len(votes(gateway.db)) == 2, 10, "the second vote")
    assert votes(gateway.db)[1]["session_id"] is None and votes(gateway.db)[1]["officer_id"] is None
    # And the report shows each under its own row.
    out = run_congso("report", "ratings", "--from", vote["ts"][:10], "--to", vote["ts"][:10], "--csv", "-", **env)
    rows = [line.split(",") for line in out.stdout.splitlines()]
    assert rows[1][1:5] == ["NV003", "Lê Thị Cúc", "1", "0"] and rows[2][2:4] == ["(không gắn cán bộ)", "1"]


def test_votes_made_offline_are_delivered_once(private_broker, spawn, tmp_path, make_kiosk):
    gw = start_gateway(spawn, private_broker, tmp_path / "gw")
    db = tmp_path / "gw" / "gateway.sqlite"
    k = make_kiosk(private_broker, lockout_s=0.3, thanks_s=0.2, press_guard_s=0.05)
    private_broker.stop()
    wait_for(lambda: not k.app.runtime.link.connected.is_set(), 10, "the kiosk offline")
    k.settle()
    assert k.texts()["status"] == "Mất kết nối, đánh giá vẫn được lưu"
    k.screenshot("offline")
    for level in ("level:0", "level:1", "level:0"):
        k.touch(level)
        assert k.app.kiosk.screen == "thanks"  # feedback while offline: the outbox has it
        wait_for(lambda: not k.app.kiosk.view(time.monotonic()).locked and k.app.kiosk.screen == "idle", 5, "idle")
    assert k.app.runtime.outbox.depth() == 3
    private_broker.start()
    wait_for(lambda: k.app.runtime.outbox.depth() == 0, 30, "the offline votes acked", gw)
    # Acked means stored (the gateway commits before it acks): nothing to wait for.
    rows = query(db, "SELECT level, COUNT(*) FROM rating_events GROUP BY level ORDER BY level")
    assert rows == [("satisfied", 1), ("very_satisfied", 2)]
    gw.terminate()


def test_kiosk_process_answers_commands(broker, spawn, tmp_path, gateway):
    config = tmp_path / "congso.toml"
    config.write_text('[rating]\nlevels = 5\n')
    env = broker.env("kiosk-1", tmp_path / "kiosk-proc", CONGSO_RATING_DESK_ID=DESK, CONGSO_DISPLAY_WIDTH=800,
                     CONGSO_DISPLAY_HEIGHT=480, CONGSO_CONFIG=config, SDL_VIDEODRIVER="dummy",
                     GPIOZERO_PIN_FACTORY="mock")
    kiosk = spawn(["rating", "run"], env, name="kiosk")
    wait_for(lambda: query(gateway.db, "SELECT state FROM nodes WHERE node_id='kiosk-1'") == [("online",)], 20,
             "the kiosk online", kiosk)
    gw_env = broker.env("gateway", gateway.data_dir)
    png = tmp_path / "kiosk.png"
    out = run_congso("node", "screenshot", "kiosk-1", "-o", str(png), **gw_env)
    assert out.returncode == 0, out.stderr + kiosk.tail()
    surface = pygame.image.load(str(png))
    assert surface.get_size() == (800, 480)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "process-5-levels.png").write_bytes(png.read_bytes())
    # The 5-level scale, as drawn by the separate process: its five labels.
    from congso.gateway import commands
    from congso.gateway.db import open_db

    db = open_db(gateway.db)
    result = commands.wait_reply(db, commands.queue(db, "kiosk-1", "screenshot", {"max_width": 400}), 15)
    assert (result["width"], result["height"], result["screen"]) == (400, 240, "idle")
    assert len(base64.b64decode(result["png_base64"])) > 1000
    assert {"Rất hài lòng", "Hài lòng", "Bình thường", "Không hài lòng", "Rất không hài lòng"} <= {t.replace("\n", " ") for t in result["texts"]}
    # reload: the file now says 3 levels and a longer lockout.
    config.write_text('[rating]\nlevels = 3\nlockout_s = 8\n')
    out = run_congso("node", "reload", "kiosk-1", **gw_env)
    assert out.returncode == 0 and '"levels": 3' in out.stdout and '"lockout_s": 8.0' in out.stdout, out.stderr
    result = commands.wait_reply(db, commands.queue(db, "kiosk-1", "screenshot", {}), 15)
    labels = {t.replace("\n", " ") for t in result["texts"]}
    assert {"Rất hài lòng", "Hài lòng", "Không hài lòng"} <= labels and "Bình thường" not in labels
    config.write_text('[rating]\nlevels = 7\n')
    out = run_congso("node", "reload", "kiosk-1", **gw_env)
    assert out.returncode != 0 and "[rating] levels must be one of 3, 4, 5; got 7" in out.stderr
    out = run_congso("node", "identify", "kiosk-1", **gw_env)
    assert out.returncode == 0 and '"seconds": 10.0' in out.stdout, out.stderr
    out = run_congso("node", "cmd", "kiosk-1", "display_power", **gw_env)
    assert out.returncode != 0 and "unknown command 'display_power'" in out.stderr
    assert kiosk.terminate() == 0, kiosk.tail()


def test_a_used_session_stays_used_across_a_kiosk_restart(gateway, make_kiosk, broker, spawn):
    """The gateway is down, so the retained session is not cleared after the vote: the restarted kiosk must
    not tie a second vote to it."""
    env = broker.env("gateway", gateway.data_dir)
    assert run_congso("desk", "open", "--desk", DESK, "--officer", "NV007", **env).returncode == 0
    k = make_kiosk(lockout_s=0.3, thanks_s=0.2)
    wait_for(lambda: k.app.kiosk.current_session() is not None, 10, "the session at the kiosk")
    assert gateway.terminate() == 0
    k.touch("level:0")
    k.close()
    k2 = make_kiosk(lockout_s=0.3, thanks_s=0.2)
    wait_for(lambda: k2.app.kiosk.session is not None, 10, "the retained session again")
    k2.settle()
    assert k2.app.kiosk.current_session() is None and "officer" not in k2.texts()
    k2.touch("level:1")
    gw = start_gateway(spawn, broker, gateway.data_dir)
    wait_for(lambda: len(votes(gateway.db)) == 2, 20, "both votes", gw)
    first, second = sorted(votes(gateway.db), key=lambda v: v["seq"])
    assert first["officer_id"] == "NV007" and first["session_id"] is not None
    assert second["officer_id"] is None and second["session_id"] is None
    wait_for(lambda: k2.app.kiosk.session is None, 10, "the session cleared once the gateway saw the vote")
    gw.terminate()


def test_a_malformed_desk_session_is_rejected_and_the_kiosk_goes_on(broker, make_kiosk):
    from mqtt_helpers import RawClient

    from conftest import SITE

    k = make_kiosk(lockout_s=0.3, thanks_s=0.2)
    gw = RawClient(broker.port, "technician", broker.credentials["technician"])
    topic = f"congso/{SITE}/state/desk/{DESK}"
    try:
        for bad in (b"{not json", b'{"v":1,"session_id":"x","desk_id":"mot-cua-1"}', b'[1,2]'):
            gw.publish(topic, bad, retain=True)
        wait_for(lambda: k.app.runtime.rejects.total() >= 3, 10, "three rejected session payloads")
        k.settle()
        assert k.app.kiosk.session is None and "officer" not in k.texts()
        k.touch("level:0")
        assert k.app.kiosk.screen == "thanks" and k.app.kiosk.votes == 1
    finally:
        gw.publish(topic, b"", retain=True)
        gw.close()
