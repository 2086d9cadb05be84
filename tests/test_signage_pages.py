"""The TV's pages: pure layouts drawn with the real renderer on SDL's dummy driver, checked on pixels."""

from __future__ import annotations

from datetime import timedelta

import pytest

from congso.signage_node import pages
from congso.ui import Box, Text, texts
from congso.ui.layout import contains

from signage_helpers import NAMES, NOW, Screen, announcements_state, dossiers_state, full_view

ALL = list(pages.PAGE_NAMES)


def _text(screen: Screen, tag: str):
    found = [d for d in screen.drawn() if d.tag == tag]
    assert found, f"no text tagged {tag!r}; tags: {[d.tag for d in screen.drawn()]}"
    return found[0]


def test_the_board_highlights_overdue_rows_in_red_and_shows_masked_names_only():
    screen = Screen((1280, 720))
    view = full_view()
    screen.draw(view, ("dossiers", 0))
    path = screen.save("board-1280x720")
    assert path.exists()
    late = _text(screen, "row0-code-overdue")
    x, y, w, h = late.box
    assert screen.surface.get_at((x - 4, y + h // 2))[:3] == pages.RED  # the row's own background, beside the text
    assert _text(screen, "row0-status-overdue").text == "Quá hạn"
    on_time = [d for d in screen.drawn() if d.tag.startswith("row") and d.tag.endswith("-code") and "overdue" not in d.tag][0]
    assert screen.surface.get_at((on_time.box[0] - 4, on_time.box[1] + 2))[:3] in (pages.WHITE, pages.ROW_ALT)
    shown = "\n".join(d.text for d in screen.drawn())
    assert "Nguyễn T. T. H." in shown and "Đang xử lý" in shown and "Yêu cầu bổ sung" in shown
    for name in NAMES:
        assert name not in shown
    assert _text(screen, "count-overdue").text == "2" and _text(screen, "label-overdue").text == "Quá hạn"
    assert _text(screen, "date").text == "Thứ Tư, 25/11/2026" and _text(screen, "clock").text == "09:41"
    assert _text(screen, "site").text == "UBND xã Kỳ Châu"


def test_the_board_is_paged_and_every_dossier_is_shown_once():
    view = full_view(states={"dossiers": dossiers_state(37)})
    size = (1280, 720)
    n = pages.dossier_pages(view, size)
    assert n == 4
    seen = []
    for i in range(n):
        ins = pages.dossiers_page(view, size, i)
        label = [t for t in texts(ins) if t.tag == "page-number"][0].text
        assert label == f"Trang {i + 1}/{n}"
        seen += [t.text for t in texts(ins) if t.tag.startswith("row") and ("-code" in t.tag)]
    assert sorted(seen) == sorted(d["code"] for d in view.states["dossiers"]["dossiers"])
    assert [s for s in pages.slots(view, size, ["dossiers"])] == [("dossiers", i) for i in range(4)]


def test_a_cut_board_says_how_many_were_left_out():
    state = dossiers_state(5)
    state["omitted"] = 212
    ins = pages.dossiers_page(full_view(states={"dossiers": state}), (1280, 720))
    assert "… và 212 hồ sơ khác, xin hỏi tại bộ phận một cửa" in [t.text for t in texts(ins)]


def test_pages_without_data_are_skipped_and_nothing_is_invented():
    empty = pages.View(site_name="UBND xã Kỳ Châu", now=NOW, states={})
    assert pages.slots(empty, (1280, 720), ALL) == []
    screen = Screen()
    screen.draw(empty, None)
    screen.save("no-data")
    assert "Chưa có dữ liệu" in _text(screen, "message").text
    # Received but empty: said plainly; no ready page when nobody is waiting.
    quiet = full_view(states={"dossiers": {**dossiers_state(0), "counts": {}}, "calendar": {"v": 1, "version": 1,
                                                                                           "week_start": "2026-11-23", "entries": []}})
    slots = pages.slots(quiet, (1280, 720), ALL)
    assert ("ready", 0) not in slots and ("calendar", 0, 0) in slots and ("calendar", 1, 0) not in slots
    assert "Hiện không có hồ sơ đang chờ giải quyết" in [t.text for t in texts(pages.dossiers_page(quiet, (1280, 720)))]
    assert "Chưa có lịch công tác tuần này" in [t.text for t in texts(pages.calendar_page(quiet, (1280, 720)))]


def test_offline_mark_and_unsynchronised_clock_are_shown():
    screen = Screen()
    view = full_view(offline=True, stale=True, updated_at=NOW - timedelta(minutes=12), clock_synced=False)
    screen.draw(view, ("ratings",))
    screen.save("offline-ratings")
    stale = _text(screen, "stale")
    assert stale.text == "Mất kết nối · Cập nhật lúc 09:29 · Đồng hồ chưa đồng bộ"
    circles = [i for i in pages.header(view, (1280, 720)) if i.__class__.__name__ == "Circle"]
    assert screen.surface.get_at(circles[0].center)[:3] == pages.RED
    assert _text(screen, "pct").text == "96%"
    online = full_view()
    assert not [t for t in texts(pages.header(online, (1280, 720))) if t.tag == "stale"]


def test_calendar_week_follows_the_tvs_own_clock_and_announcements_expire_on_the_tv():
    view = full_view()
    ins = pages.calendar_page(view, (1280, 720), 0, 0)
    titles = [t.text for t in texts(ins) if t.tag.startswith("cal") and t.tag.endswith("-title")]
    assert titles[0].startswith("Họp giao ban đầu tuần") and len(titles) == 4
    assert [t.text for t in texts(ins) if t.tag == "page-title"] == ["Lịch công tác tuần này (23/11 – 29/11/2026)"]
    assert [t.text for t in texts(ins) if t.tag == "cal3-time"] == ["Cả ngày"]
    # A week later with the gateway away: last week's entries are not shown as this week's.
    later = full_view(now=NOW + timedelta(days=7))
    later = pages.View(site_name=later.site_name, now=later.now, states={**later.states, "calendar": view.states["calendar"]})
    this_week = [t.text for t in texts(pages.calendar_page(later, (1280, 720), 0, 0)) if t.tag.startswith("cal") and t.tag.endswith("-title")]
    assert this_week == ["Họp giao ban đầu tuần\nPhòng họp UBND xã"]  # only the entry dated in that week
    # An announcement that ended while the TV was offline is no longer shown or scrolled.
    after = full_view(now=NOW.replace(year=2027, month=1, day=4))
    assert [a["id"] for a in pages.current_announcements(after)] == ["a1"]
    assert "Lịch tiếp công dân" not in pages.ticker_text(after)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (3840, 2160), (1080, 1920)])
def test_every_text_stays_inside_its_box_at_every_resolution(size):
    screen = Screen(size)
    view = full_view(offline=True, stale=True, updated_at=NOW, clock_synced=False,
                     states={"dossiers": dossiers_state(40)})
    slots = pages.slots(view, size, ALL)
    assert {s[0] for s in slots} == set(ALL)
    w, h = size
    for slot in slots:
        screen.draw(view, slot, ticker_offset=w // 2)
        for d in screen.drawn():
            if d.tag == "ticker":
                continue  # the moving text is clipped by its strip, checked below
            assert contains(d.box, d.ink), f"{size} {slot}: {d.tag} {d.text!r} ink {d.ink} outside {d.box}"
            assert contains((0, 0, w, h), d.box), f"{size} {slot}: {d.tag} box {d.box} off screen"
        if slot[-1] == 0 or slot == ("ratings",):
            screen.save(f"{w}x{h}-{'-'.join(map(str, slot))}")
    ticker = _text(screen, "ticker")
    assert contains(ticker.box, ticker.ink) and ticker.box[1] >= h - screen.fh


def test_an_unchanged_frame_is_not_drawn_again_and_the_ticker_redraws_only_its_strip():
    screen = Screen()
    view = full_view()
    screen.draw(view, ("dossiers", 0), 0)
    main = pages.frame(view, screen.size, ("dossiers", 0))
    assert screen.main.draw(main) is False  # identical: nothing drawn
    text = pages.ticker_text(view)
    width = screen.footer.measure(text, pages.ticker_font(screen.size))[0]
    assert screen.footer.draw(pages.ticker(text, screen.size, 12, width)) is True
    assert screen.main.draw(main) is False
    # The ticker's text enters from the right and leaves on the left.
    t0 = [i for i in pages.ticker(text, screen.size, 0, width) if isinstance(i, Text) and i.tag == "ticker"][0]
    t1 = [i for i in pages.ticker(text, screen.size, 100, width) if isinstance(i, Text) and i.tag == "ticker"][0]
    assert t0.rect[0] == 1280 and t1.rect[0] == 1180
    assert isinstance(pages.ticker("", screen.size, 0, 0)[0], pages.Fill if hasattr(pages, "Fill") else object)
    assert not [i for i in pages.ticker("", screen.size, 0, 0) if isinstance(i, (Text, Box))]


def test_announcement_slide_has_a_scannable_qr_code():
    screen = Screen()
    view = full_view(states={"announcements": announcements_state()})
    screen.draw(view, ("announcements", 0))
    screen.save("announcement-qr")
    qr = [i for i in pages.announcement_page(view, (1280, 720), 0) if i.__class__.__name__ == "QR"][0]
    assert qr.data == "https://dichvucong.gov.vn"
    # segno draws the finder pattern: the QR's top-left module block is dark on a light quiet zone.
    import segno

    code = segno.make(qr.data, error="m")
    modules = len(list(code.matrix_iter(border=4)))
    x, y, w, h = qr.rect
    side = (min(w, h) // modules) * modules
    left, top = x + (w - side) // 2, y + (h - side) // 2
    unit = side // modules
    assert screen.surface.get_at((left + unit * 4 + unit // 2, top + unit * 4 + unit // 2))[:3] == (0, 0, 0)
    assert screen.surface.get_at((left + unit // 2, top + unit // 2))[:3] == (255, 255, 255)
    assert "Quét mã QR để truy cập" in _text(screen, "ann-qr").text
