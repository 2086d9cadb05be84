"""Any text, and the screens stay up; text that enters is cleaned, naming the field and the line.

Before: a dossier imported with a NUL in a field made the hall TV exit ("A
null character was found in the text") at every start, from its own disk
cache, even with no network.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from datetime import datetime

import pytest

from signage_helpers import NOW, Screen, announcements_state, calendar_state, dossiers_state, ratings_state  # SDL dummy

import pygame  # noqa: E402

from conftest import SITE, wait_for
from congso.gateway import announcements, dossiers, staff, work_calendar
from congso.gateway.db import open_db
from congso.ops import broker as broker_ops
from congso.protocol import settings as settings_mod
from congso.rating_node import screens
from congso.rating_node.kiosk import View
from congso.signage_node import pages
from congso.signage_node.app import SignageApp
from congso.ui import Renderer, Text, textfit
from congso.vocab import levels

# Every control (Cc) and format (Cf) character of Unicode, and a lone surrogate.
BAD = "".join(chr(c) for c in range(sys.maxunicode + 1)
              if unicodedata.category(chr(c)) in ("Cc", "Cf") and not 0xD800 <= c <= 0xDFFF) + "\ud800"
# Lines are joined with "\n" in what the renderer reports; no other of these may show.
NEVER_DRAWN = set(BAD) - {"\n"}
ALL_PAGES = list(pages.PAGE_NAMES)
TZ = "Asia/Ho_Chi_Minh"


def poisoned(text: str) -> str:
    return f"{text[:3]}{BAD}{text[3:]}"


# Every free-text field of the board states (what the contract lets be any string).
TEXT_FIELDS = {"code", "applicant", "procedure", "desk", "id", "title", "leaders", "location", "participants",
               "preparer", "body"}


def _poison(value, key=None):
    """The state with BAD inside every text field (and every valid state passes the contract's checks)."""
    if isinstance(value, str):
        return poisoned(value) if key in TEXT_FIELDS else value
    if isinstance(value, list):
        return [_poison(v, key) for v in value]
    if isinstance(value, dict):
        return {k: _poison(v, k) for k, v in value.items()}
    return value


def _draw_every_page(screen: Screen, view: pages.View) -> list[str]:
    drawn = []
    for slot in pages.slots(view, screen.size, ALL_PAGES) or [None]:
        screen.draw(view, slot)
        drawn += [d.text for d in screen.drawn()]
    return drawn


def test_the_tv_draws_every_page_whatever_characters_the_states_hold():
    screen = Screen()
    states = {"dossiers": _poison(dossiers_state()), "calendar": _poison(calendar_state()),
              "announcements": _poison(announcements_state()), "ratings": ratings_state()}
    view = pages.View(site_name=poisoned("UBND xã Kỳ Châu"), now=NOW, states=states)
    drawn = _draw_every_page(screen, view)
    assert drawn and not any(ch in text for text in drawn for ch in NEVER_DRAWN)


@pytest.mark.parametrize("screen_name", ["idle", "reasons", "thanks", "error"])
def test_the_kiosk_draws_every_screen_whatever_the_officer_desk_and_error_hold(screen_name):
    pygame.font.init()
    r = Renderer(pygame.Surface((1280, 720)))
    view = View(screen=screen_name, levels=levels.scale(5), desk_id=poisoned("mot-cua-1"),
                officer_name=poisoned("Lê Thị Cúc"), dossier_code=poisoned("H23-0007"), chosen=1,
                error=poisoned("Không ghi được"), desk_name=poisoned("Quầy 1 · Tư pháp"))
    r.draw(screens.layout(view, (1280, 720)).instructions)
    assert r.drawn_text and not any(ch in d.text for d in r.drawn_text for ch in NEVER_DRAWN)


def test_the_text_fitter_takes_every_character_with_pygames_own_metrics():
    pygame.font.init()
    r = Renderer(pygame.Surface((400, 200)))
    fitted = textfit.fit(poisoned("Nguyễn Thị Thu Hà\nPhòng Tư pháp"), 200, 120, 40, 12, 3, r.measure)
    assert fitted.lines[0].startswith("Ngu")  # the \n among BAD starts a new line; the rest is gone
    assert not any(ch in line for line in fitted.lines for ch in NEVER_DRAWN)
    for ch in BAD:  # one at a time, alone and in a word
        textfit.fit(ch, 200, 120, 40, 12, 3, r.measure)
        r.draw([Text((0, 0, 200, 100), f"a{ch}b", (0, 0, 0), 30)])


def _tv_settings(tmp_path, port: int):
    return settings_mod.load(environ={
        "CONGSO_SITE_ID": SITE, "CONGSO_NODE_ID": "tv-1", "CONGSO_DATA_DIR": str(tmp_path / "tv"),
        "CONGSO_MQTT_HOST": "127.0.0.1", "CONGSO_MQTT_PORT": str(port), "CONGSO_MQTT_USERNAME": "tv-1",
        "CONGSO_MQTT_PASSWORD": "unused-no-broker-listens", "CONGSO_SIGNAGE_CEC": "none",
        "CONGSO_SIGNAGE_PAGES": ",".join(ALL_PAGES), "SDL_VIDEODRIVER": "dummy"})


def test_a_nul_written_straight_into_the_database_and_the_tv_cache_does_not_take_the_tv_down(tmp_path, spawn):
    # A NUL that got past every check (an old version, a hand-edited database):
    db = open_db(tmp_path / "gateway.sqlite")
    with db.conn:
        db.conn.execute(
            "INSERT INTO dossiers(code, applicant, procedure, received_at, due_at, status, desk, status_changed_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            ("HS-NUL-1", "Nguyễn\x00 Thị Hà", "Khai\x00sinh", "2026-11-24", "2026-11-26", "processing", "Quầy\x001",
             NOW.isoformat(), NOW.isoformat()))
    board = {"v": 1, "version": 9, **dossiers.board(db, NOW)}
    assert "\x00" in board["dossiers"][0]["desk"]  # the gateway publishes what its database holds
    cache = tmp_path / "tv" / "state"
    cache.mkdir(parents=True)
    (cache / "dossiers.json").write_text(json.dumps(board))
    (cache / "calendar.json").write_text(json.dumps(_poison(calendar_state())))  # \u escapes: a lone surrogate too
    (cache / "announcements.json").write_text(json.dumps(_poison(announcements_state())))

    port = broker_ops.free_port()  # nothing listens: the TV is offline
    app = SignageApp(_tv_settings(tmp_path, port))
    assert "HS-NUL-1" in json.dumps(app.states["dossiers"])
    screen = Screen()
    view = app.view(datetime.now().astimezone(), 0.0)
    drawn = _draw_every_page(screen, view)
    assert any("HS-NUL-1" in t for t in drawn) and not any("\x00" in t for t in drawn)
    assert app.render_once(screen.main, screen.footer, screen.size, 0.0)

    # And the real program, started from that cache: it draws the board and stays up.
    shots = tmp_path / "shots"
    env = {k: str(v) for k, v in {
        "CONGSO_SITE_ID": SITE, "CONGSO_NODE_ID": "tv-1", "CONGSO_DATA_DIR": str(tmp_path / "tv"),
        "CONGSO_MQTT_HOST": "127.0.0.1", "CONGSO_MQTT_PORT": port, "CONGSO_MQTT_USERNAME": "tv-1",
        "CONGSO_MQTT_PASSWORD": "unused-no-broker-listens", "CONGSO_SIGNAGE_CEC": "none", "SDL_VIDEODRIVER": "dummy",
        "CONGSO_DISPLAY_WIDTH": 1280, "CONGSO_DISPLAY_HEIGHT": 720, "CONGSO_SIGNAGE_PAGES": "dossiers",
        "CONGSO_SIGNAGE_ON_HOURS": "00:00-24:00",
        "CONGSO_SIGNAGE_ON_DAYS": "monday,tuesday,wednesday,thursday,friday,saturday,sunday"}.items()}
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], env, name="tv")
    wait_for(lambda: (shots / "screen.txt").is_file() and "HS-NUL-1" in (shots / "screen.txt").read_text(), 30,
             "the board drawn from the cache", tv)
    assert tv.alive()
    assert tv.terminate() == 0


def test_text_entering_through_the_library_is_refused_naming_the_field(tmp_path):
    db = open_db(tmp_path / "gateway.sqlite")
    with pytest.raises(staff.StaffError, match=r"NV001: name: holds the control character U\+0000"):
        staff.add(db, "NV001", "Nguyễn\x00Hà")
    with pytest.raises(dossiers.DossierError, match=r"applicant: holds the control character U\+202E"):
        dossiers.add(db, "HS-1", "Nguyễn\u202eHà", "Khai sinh", "24/11/2026", now=NOW, tz=TZ)
    with pytest.raises(announcements.AnnouncementError, match=r"title: holds the control character U\+0007"):
        announcements.add(db, title="Thông\x07báo", body="Nội dung", now=NOW, tz=TZ)
    with pytest.raises(work_calendar.CalendarError, match=r"title: holds the control character U\+200B"):
        work_calendar.add(db, start="2026-11-24 08:00", title="Họp\u200bgiao ban", tz=TZ)
    # NFC on the way in: the same name typed on two keyboards is one name.
    staff.add(db, "NV002", unicodedata.normalize("NFD", "Nguyễn Thị Thu Hà"))
    assert staff.get(db, "NV002")["name"] == "Nguyễn Thị Thu Hà"


def test_imports_name_the_field_and_the_line(tmp_path):
    db = open_db(tmp_path / "gateway.sqlite")
    data = "staff_id,name,department\nNV001,Nguyễn Thị Hà,Văn phòng\nNV002,Trần\x07Bình,Địa chính\n".encode()
    with pytest.raises(staff.StaffError, match=r"line 3: NV002: name: holds the control character U\+0007"):
        staff.import_csv(db, data)
    f = tmp_path / "ho-so.csv"
    f.write_text("Mã hồ sơ,Người nộp,Thủ tục,Ngày tiếp nhận\nHS-1,Đặng Thị Ánh,Khai\u202esinh,24/11/2026\n")
    with pytest.raises(dossiers.DossierError, match=r"line 2: procedure: holds the control character U\+202E"):
        dossiers.import_file(db, f, now=NOW, tz=TZ)
    ics = tmp_path / "lich.ics"
    ics.write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:e1\r\nDTSTART:20261124T080000\r\n"
                    b"SUMMARY:H\\xe1\\xbb\\x8dp\x07giao ban\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    with pytest.raises(work_calendar.CalendarError, match=r"event 1: title: holds the control character U\+0007"):
        work_calendar.import_ics(db, ics, tz=TZ, today=NOW.date())
    assert staff.list_staff(db) == [] and dossiers.list_all(db) == []
