"""Schedules of pages and slides on the hall TV, at their edges.

``[signage] pages`` entries carry a schedule after ``name[:seconds]``; each
slide its own (from the announcements state) on top of its validity
window. The TV plays what is on now; with nothing on it shows the office's
name and the clock, never a blank or an error screen.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from congso.signage_node import pages
from congso.signage_node.app import parse_page_entries, parse_pages
from congso.ui import Fill, texts

from signage_helpers import TZ, Screen, announcements_state, dossiers_state, picture_slide, red_blue_picture, OUT

SIZE = (1280, 720)


def _entries(*text):
    return parse_page_entries(list(text), 15.0)


def _names(entries, now):
    return [n for n, _ in pages.pages_on(entries, now)]


def test_page_entries_parse_name_seconds_and_schedule_and_errors_name_the_entry():
    e = _entries("dossiers", "kpi:20 mon-fri 13:30-17:00", "ratings 2026-12-05..2026-12-06")
    assert [(x.name, x.seconds) for x in e] == [("dossiers", 15.0), ("kpi", 20.0), ("ratings", 15.0)]
    assert e[0].schedule is None and e[1].schedule.days == (0, 1, 2, 3, 4) and e[1].schedule.hours == ((810, 1020),)
    # The old form still reads as before.
    assert parse_pages(["dossiers:30", "calendar"], 15.0) == [("dossiers", 30.0), ("calendar", 15.0)]
    with pytest.raises(ValueError, match=r"\[signage\] pages: 'kpi:20 mon-fri 13:30-12:00'.*must end after it starts"):
        _entries("kpi:20 mon-fri 13:30-12:00")
    with pytest.raises(ValueError, match=r"'kpi someday'.*'someday' is not mon..sun"):
        _entries("kpi someday")
    with pytest.raises(ValueError, match="unknown page 'weather'"):
        _entries("weather:10 mon-fri")
    with pytest.raises(ValueError, match="name or name:seconds"):
        _entries("kpi:x mon-fri")


def test_hours_edges_the_first_and_last_minute():
    e = _entries("dossiers 07:30-11:30", "kpi")
    monday = datetime(2026, 11, 30, tzinfo=TZ)
    assert monday.weekday() == 0
    assert _names(e, monday.replace(hour=7, minute=29, second=59)) == ["kpi"]
    assert _names(e, monday.replace(hour=7, minute=30)) == ["dossiers", "kpi"]
    assert _names(e, monday.replace(hour=11, minute=29, second=59)) == ["dossiers", "kpi"]  # the last minute is in
    assert _names(e, monday.replace(hour=11, minute=30)) == ["kpi"]  # the end is not


def test_weekday_boundary_friday_midnight_to_saturday():
    e = _entries("kpi:20 mon-fri", "ratings sat-sun")
    friday_end = datetime(2026, 12, 4, 23, 59, 59, tzinfo=TZ)
    assert friday_end.weekday() == 4
    assert _names(e, friday_end) == ["kpi"]
    assert _names(e, friday_end + timedelta(seconds=1)) == ["ratings"]
    assert pages.pages_on(e, friday_end) == [("kpi", 20.0)]


def test_date_range_first_and_last_day():
    e = _entries("ratings 2026-12-05..2026-12-06")
    assert _names(e, datetime(2026, 12, 4, 23, 59, 59, tzinfo=TZ)) == []
    assert _names(e, datetime(2026, 12, 5, 0, 0, tzinfo=TZ)) == ["ratings"]
    assert _names(e, datetime(2026, 12, 6, 23, 59, 59, tzinfo=TZ)) == ["ratings"]
    assert _names(e, datetime(2026, 12, 7, 0, 0, tzinfo=TZ)) == []


def test_a_page_listed_twice_takes_the_first_entry_on_now():
    e = _entries("kpi:20 mon-fri", "kpi:5")
    assert pages.pages_on(e, datetime(2026, 12, 4, 9, 0, tzinfo=TZ)) == [("kpi", 20.0)]
    assert pages.pages_on(e, datetime(2026, 12, 5, 9, 0, tzinfo=TZ)) == [("kpi", 5.0)]


def _slide_view(now, schedule=None, **window):
    sha, n = red_blue_picture(OUT / "media" / "schedule.png", (640, 360))
    ann = announcements_state()
    ann["items"] = [picture_slide(sha, n, (640, 360), schedule=schedule, **window),
                    {"id": "t1", "title": "Tiêm chủng", "body": "Sáng thứ Bảy", "qr_url": None, "valid_from": None,
                     "valid_until": None, "schedule": schedule}]
    return pages.View(site_name="UBND xã Kỳ Châu", now=now, states={"announcements": ann},
                      media={sha: str(OUT / "media" / "schedule.png")})


def test_a_slides_schedule_and_window_both_decide():
    sched = "sat 07:30-11:30 2026-12-05..2026-12-12"
    sat = datetime(2026, 12, 5, 7, 30, tzinfo=TZ)
    on = _slide_view(sat, sched)
    assert pages.slots(on, SIZE, ["slides", "announcements"]) == [("slides", "s1"), ("announcements", 0)]
    for off in (sat - timedelta(seconds=1), sat.replace(hour=11, minute=30), sat + timedelta(days=1),
                datetime(2026, 12, 19, 8, 0, tzinfo=TZ)):  # before, at the end, Sunday, after the range
        assert pages.slots(_slide_view(off, sched), SIZE, ["slides", "announcements"]) == [], off
    # The last minute of the last day is still on.
    assert pages.slots(_slide_view(datetime(2026, 12, 12, 11, 29, 59, tzinfo=TZ), sched), SIZE, ["slides"]) == [("slides", "s1")]
    # On its schedule but its window has closed: off.
    closed = _slide_view(sat, sched, valid_until="2026-12-05T07:29:59+07:00")
    assert pages.slots(closed, SIZE, ["slides"]) == []
    # A schedule the TV cannot read is off (never an error screen).
    assert pages.slots(_slide_view(sat, "someday"), SIZE, ["slides"]) == []


def test_a_slide_not_in_the_cache_yet_is_skipped():
    view = _slide_view(datetime(2026, 12, 5, 8, 0, tzinfo=TZ))
    assert pages.slots(view, SIZE, ["slides"]) == [("slides", "s1")]
    fetching = pages.View(site_name=view.site_name, now=view.now, states=view.states, media={})
    assert pages.slots(fetching, SIZE, ["slides"]) == []


def test_nothing_on_shows_the_office_name_and_the_clock():
    now = datetime(2026, 12, 5, 19, 5, tzinfo=TZ)  # Saturday evening: the weekday pages are off
    entries = _entries("dossiers mon-fri", "kpi mon-fri 13:30-17:00")
    view = pages.View(site_name="UBND xã Kỳ Châu", now=now, states={"dossiers": dossiers_state()})
    slot_names = [n for n, _ in pages.pages_on(entries, now)]
    assert pages.slots(view, SIZE, slot_names) == []
    frame = pages.frame(view, SIZE, None)
    by_tag = {t.tag: t.text for t in texts(frame)}
    assert by_tag["idle-site"] == "UBND xã Kỳ Châu" and by_tag["clock"] == "19:05"
    assert "Thứ Bảy" in by_tag["date"]
    assert isinstance(frame[0], Fill) and frame[0].color == pages.NAVY
    screen = Screen(SIZE)
    screen.draw(view, None)
    screen.save("idle-1280x720")
    assert screen.surface.get_at((10, 10))[:3] == pages.NAVY  # not black, not blank
    assert any(d.tag == "clock" for d in screen.drawn())
