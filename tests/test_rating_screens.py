"""The kiosk's pure parts: layouts and their hit targets, touch rotation, the state machine's rules.

Rendering goes through the real renderer on an SDL dummy surface; the state
machine gets a commit function that stores into the real node outbox.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pygame
import pytest

from congso.protocol.outbox import Outbox, OutboxError
from congso.rating_node import screens
from congso.rating_node.inputs import touch_point, unrotate
from congso.rating_node.kiosk import Kiosk, Rules
from congso.ui import Renderer
from congso.vocab import levels
from congso.ui import layout as L

SIZES = [(1280, 720), (800, 480), (720, 1280), (1920, 1080)]


@pytest.fixture(scope="module")
def renderer_for():
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    pygame.font.init()
    cache = {}

    def get(size):
        if size not in cache:
            cache[size] = Renderer(pygame.Surface(size))
        return cache[size]
    return get


def session(minutes=5, sid="s-1", desk="mot-cua-1"):
    now = datetime.now(timezone.utc)
    return {"session_id": sid, "desk_id": desk, "officer_id": "NV003", "officer_name": "Lê Thị Cúc",
            "dossier_code": "H23-0007", "opened_at": now.isoformat(timespec="seconds"),
            "expires_at": (now + timedelta(minutes=minutes)).isoformat(timespec="seconds")}


def make(n=3, commit=None, **rules):
    sent = []
    k = Kiosk(levels.scale(n), "mot-cua-1", commit or (lambda f: sent.append(f) or f),
              Rules(**{"lockout_s": 5, "thanks_s": 3, **rules}), wall=lambda: datetime.now(timezone.utc))
    return k, sent


def views(n):
    k, _ = make(n)
    k.set_session(session())
    yield "idle", k.view(0.0)
    yield "locked", k.view(0.0).__class__(**{**k.view(0.0).__dict__, "locked": True})
    k.press(n - 1, 1.0, "touch")
    k.touch("reason:thai_do", 1.5)
    yield "reasons", k.view(1.5)
    k.touch("send", 2.0)
    yield "thanks", k.view(2.0, clock_synced=False, online=False)


@pytest.mark.parametrize("n", [3, 4, 5])
@pytest.mark.parametrize("size", SIZES)
def test_every_target_is_hit_at_its_centre_and_text_stays_in_its_box(n, size, renderer_for):
    r = renderer_for(size)
    for name, view in views(n):
        screen = screens.layout(view, size)
        for rect, action in screen.targets:
            assert screens.hit(screen, screens.center(screen, action)) == action
            assert L.contains((0, 0, *size), rect), (name, action, rect)
        # Targets never overlap: a touch means one thing.
        rects = [rect for rect, _ in screen.targets]
        for i, a in enumerate(rects):
            for b in rects[i + 1:]:
                ax, ay, aw, ah = a
                bx, by, bw, bh = b
                assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (name, a, b)
        r.draw(screen.instructions)
        for d in r.drawn_text:
            assert L.contains(d.box, d.ink), (name, size, d)
            assert "…" not in d.text, (name, size, d)  # nothing cut on any of these screens
    if size == (1280, 720) and n == 3:
        assert screens.hit(screens.layout(next(views(3))[1], size), (5, 5)) is None


def test_idle_shows_officer_and_level_labels():
    k, _ = make(5)
    k.set_session(session())
    texts = {t.tag: t.text for t in screens.layout(k.view(0.0), (1280, 720)).instructions if hasattr(t, "tag")}
    assert texts["officer"] == "Cán bộ phục vụ: Lê Thị Cúc  ·  Hồ sơ: H23-0007"
    assert [texts[f"level:{i}"] for i in range(5)] == ["Rất hài lòng", "Hài lòng", "Bình thường", "Không hài lòng",
                                                      "Rất không hài lòng"]
    other, _ = make(3)
    other.set_session(session(desk="mot-cua-2"))  # another desk's session: not ours
    assert other.session is None
    assert "officer" not in {t.tag for t in screens.layout(other.view(0.0), (1280, 720)).instructions if hasattr(t, "tag")}

    # The footer names the desk as citizens know it, or by its id.
    assert texts["desk"] == "Quầy mot-cua-1"
    k.desk_name = "Quầy 1 · Tư pháp - Hộ tịch"
    named = {t.tag: t.text for t in screens.layout(k.view(0.0), (1280, 720)).instructions if hasattr(t, "tag")}
    assert named["desk"] == "Quầy 1 · Tư pháp - Hộ tịch"


@pytest.mark.parametrize("rotation,panel,expected", [
    (0, (0.25, 0.5), (0.25, 0.5)),
    (90, (1.0, 0.0), (0.0, 0.0)),      # the picture's top-left is at the panel's top-right
    (180, (0.0, 0.0), (1.0, 1.0)),
    (270, (0.0, 1.0), (0.0, 0.0)),
])
def test_touch_follows_the_display_rotation(rotation, panel, expected):
    assert unrotate(*panel, rotation) == expected


def test_touch_events_one_press_each():
    finger = pygame.event.Event(pygame.FINGERDOWN, x=0.5, y=0.25, touch_id=1, finger_id=0)
    assert touch_point(finger, (1280, 720), (1280, 720), 0) == (640, 180)
    # Portrait kiosk: the panel is 720x1280 landscape hardware turned by 90.
    assert touch_point(finger, (720, 1280), (1280, 720), 90) == (180, 640)
    copy = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(640, 180), button=1, touch=True)
    assert touch_point(copy, (1280, 720), (1280, 720), 0) is None  # SDL's mouse copy of a touch
    mouse = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(640, 180), button=1, touch=False)
    assert touch_point(mouse, (1280, 720), (1280, 720), 0) == (640, 180)


def test_lockout_guard_and_burst_rule():
    k, sent = make(burst_presses=3, burst_window_s=10, press_guard_s=0.3)
    assert k.press(0, 100.0) == "vote"
    assert k.press(1, 100.1) == "ignored" and k._lockout_presses == 0  # same press (guard), not a new one
    for t in (101.0, 102.0):
        assert k.press(1, t) == "ignored"
    assert k.press(0, 106.0) == "vote" and sent[-1]["burst"] is False  # only 2 presses in the lockout
    for t in (107.0, 108.0, 109.0):
        k.press(2, t)
    k.touch(None, 109.5)  # a slap anywhere on the screen counts too
    assert k.press(1, 125.0) == "vote" and sent[-1]["burst"] is False  # too long after the lockout ended
    for t in (126.0, 127.0, 128.0):
        k.press(2, t)
    assert k.press(1, 131.0) == "vote" and sent[-1]["burst"] is True
    assert [f["level"] for f in sent] == ["very_satisfied", "very_satisfied", "satisfied", "satisfied"]


def test_one_vote_per_session_and_expired_sessions_ignored():
    k, sent = make(lockout_s=1, thanks_s=0.5)
    k.set_session(session(sid="s-1"))
    k.press(1, 10.0)
    assert sent[-1]["session_id"] == "s-1" and sent[-1]["officer_id"] == "NV003"
    assert k.used == {"s-1"} and k.current_session() is None  # used, though still retained
    k.press(0, 20.0)
    assert sent[-1]["session_id"] is None and sent[-1]["officer_id"] is None
    k.set_session(session(minutes=-1, sid="s-2"))  # expired by the kiosk's clock
    k.press(0, 30.0)
    assert sent[-1]["session_id"] is None
    k.set_session(session(sid="s-3"))
    k.press(0, 40.0)
    assert sent[-1]["session_id"] == "s-3"


def test_reasons_are_sent_by_button_back_and_timeout():
    k, sent = make(reasons_timeout_s=20, lockout_s=1, thanks_s=0.5)
    assert k.press(2, 0.0, "touch") == "reasons"
    k.touch("reason:khac", 1.0)
    assert k.touch("back", 2.0) == "back" and k.screen == "idle" and sent == []
    assert k.press(2, 3.0, "touch") == "reasons" and k.ticked == set()
    k.touch("reason:phi", 4.0)
    assert k.press(0, 5.0, "button") == "vote"  # a button on the reasons screen sends
    assert sent[-1]["reasons"] == ["phi"] and sent[-1]["level"] == "dissatisfied"
    k.press(2, 10.0)
    k.touch("reason:thoi_gian", 11.0)
    k.tick(30.9)
    assert sent[-1]["reasons"] == ["phi"]  # 20 s after the last touch, not the first
    k.tick(31.0)
    assert sent[-1]["reasons"] == ["thoi_gian"] and k.screen == "thanks"
    k2, sent2 = make(ask_reasons=False)
    assert k2.press(2, 0.0) == "vote" and sent2[-1]["reasons"] == []


def test_no_thank_you_when_the_vote_cannot_be_stored(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite", "kiosk-1")

    def commit(fields):
        return outbox.add("rating", fields, ts="2026-11-24T08:00:00+07:00", clock_synced=True)

    k, _ = make(commit=commit)
    assert k.press(0, 0.0) == "vote" and outbox.depth() == 1
    outbox.close()  # the database is gone: the next commit fails
    k2, _ = make(commit=lambda f: (_ for _ in ()).throw(OutboxError("disk full")))
    assert k2.press(1, 0.0) == "error" and k2.screen == "error" and k2.votes == 0
    texts = [t.text for t in screens.layout(k2.view(0.0), (1280, 720)).instructions if hasattr(t, "tag")]
    assert screens.ERROR_TEXT in texts and screens.THANKS_TEXT not in texts
    k2.tick(3.0)
    assert k2.screen == "idle" and not k2.view(3.0).locked  # nothing counted, nothing locked
