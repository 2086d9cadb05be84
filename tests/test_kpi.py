"""The office's figures for a hand-built month (issue 18, part 8).

November 2026 at the gateway, built through the library's own calls (the
dossiers' history gets the times of each status change) and the gateway's
ingest (the votes). The figures are checked exactly in the library, in the
CLI's JSON and XLSX, and on the console page; an officer may not see them.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from congso.cli import main
from congso.gateway import dossiers, kpi
from congso.protocol import settings as settings_mod
from rating_helpers import store, vote
from web_helpers import Console

TZ = "Asia/Ho_Chi_Minh"
ZONE = ZoneInfo(TZ)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=ZONE)  # November is over
MID = datetime(2026, 11, 20, 10, 0, tzinfo=ZONE)  # ... or not yet


def at(day: int, hm: str = "09:00", month: int = 11) -> datetime:
    h, m = hm.split(":")
    return datetime(2026, month, day, int(h), int(m), tzinfo=ZONE)


def build(db) -> None:
    def add(code, received, due, online=False, when=None):
        dossiers.add(db, code, "Nguyễn Thị Thu Hà", "Chứng thực", received, due, now=when or at(int(received[:2])),
                     tz=TZ, online=online)

    # A: ready the day before its due date, returned after it: on time (resolved when it became ready).
    add("A", "02/11/2026", "10/11/2026", online=True)
    dossiers.set_status(db, "A", "processing", now=at(3))
    dossiers.set_status(db, "A", "ready", now=at(9, "10:00"))
    dossiers.set_status(db, "A", "returned", now=at(12))
    # B: ready the morning after its due day: late.
    add("B", "03/11/2026", "10/11/2026")
    dossiers.set_status(db, "B", "ready", now=at(11, "08:00"))
    # C: due at 16:00, ready at 15:00 that day: on time.
    add("C", "03/11/2026", "12/11/2026 16:00")
    dossiers.set_status(db, "C", "ready", now=at(12, "15:00"))
    # D: ready in time, sent back for a supplement, ready again after the due day: late.
    add("D", "03/11/2026", "10/11/2026")
    dossiers.set_status(db, "D", "ready", now=at(9))
    dossiers.set_status(db, "D", "supplement_required", now=at(10))
    dossiers.set_status(db, "D", "ready", now=at(13))
    # E: received in October, due on the 15th, still being processed: open and overdue.
    add("E", "28/10/2026", "15/11/2026", when=at(28, month=10))
    dossiers.set_status(db, "E", "processing", now=at(29, month=10))
    # F: online, due on the 25th, not started: overdue on 1 December, not yet due on the 20th.
    add("F", "18/11/2026", "25/11/2026", online=True)
    # G: online, received in November, due in December: counted as received only.
    add("G", "05/11/2026", "03/12/2026", online=True)
    # H: all in October: in no figure of November.
    add("H", "20/10/2026", "30/10/2026", online=True, when=at(20, month=10))
    dossiers.set_status(db, "H", "returned", now=at(22, month=10))


VOTES = [  # (level, day, flagged)
    ("very_satisfied", 3, False), ("very_satisfied", 4, False), ("satisfied", 5, False),
    ("neutral", 6, False), ("dissatisfied", 9, False), ("very_dissatisfied", 10, False),
    ("very_satisfied", 11, True),  # a burst of presses: left out
]


def store_votes(db_path) -> None:
    items = [vote(level, f"2026-11-{day:02d}T09:30:00+07:00", seq=i, **({"burst": True} if flagged else {}))
             for i, (level, day, flagged) in enumerate(VOTES, start=1)]
    items.append(vote("dissatisfied", "2026-10-31T09:30:00+07:00", seq=len(items) + 1))  # October
    items.append(vote("dissatisfied", "2026-12-01T08:30:00+07:00", seq=len(items) + 1))  # December
    store(db_path, items)


@pytest.fixture
def office(tmp_path):
    c = Console(tmp_path, clock=lambda: NOW)
    build(c.db)
    store_votes(c.db_path)
    c.user("ld", "viewer")
    c.user("cuc", "officer")
    return c


TARGETS = {"online_target": 0.4, "on_time_target": 1.0, "satisfaction_target": 0.9}


def test_the_month_figures_exactly(office):
    k = kpi.month(office.db, "2026-11", TZ, now=NOW, targets=TARGETS)
    assert k["on_time"] == {"due": 6, "on_time": 2, "late": 2, "open_overdue": 2, "open_not_due": 0, "counted": 6,
                            "share": 2 / 6, "target": 1.0, "met": False}
    assert k["online"] == {"received": 6, "online": 3, "share": 0.5, "target": 0.4, "met": True}
    assert k["satisfaction"] == {
        "votes": 6, "satisfied": 3, "flagged_excluded": 1, "share": 0.5, "target": 0.9, "met": False,
        "levels": {"very_satisfied": 2, "satisfied": 1, "neutral": 1, "dissatisfied": 1, "very_dissatisfied": 1}}
    # A share equal to its target meets it.
    assert kpi.month(office.db, "2026-11", TZ, now=NOW, targets={"online_target": 0.5})["online"]["met"] is True
    # Mid-month, F is open and not yet due: shown, not counted.
    mid = kpi.month(office.db, "2026-11", TZ, now=MID, targets=TARGETS)["on_time"]
    assert (mid["on_time"], mid["late"], mid["open_overdue"], mid["open_not_due"], mid["share"]) == (2, 2, 1, 1, 0.4)


def test_an_empty_month_has_no_share_and_a_bad_month_is_refused(office):
    k = kpi.month(office.db, "2025-01", TZ, now=NOW, targets=TARGETS)
    assert [k[key]["share"] for key in ("on_time", "online", "satisfaction")] == [None, None, None]
    assert [k[key]["met"] for key in ("on_time", "online", "satisfaction")] == [None, None, None]
    assert k["on_time"]["counted"] == k["online"]["received"] == k["satisfaction"]["votes"] == 0
    for bad in ("2026-13", "11/2026", "", "2026-1"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            kpi.month(office.db, bad, TZ, now=NOW)


def test_targets_are_settings_in_0_to_1(tmp_path):
    s = settings_mod.load(environ={"CONGSO_KPI_ONLINE_TARGET": "0.55"})
    assert s.kpi.as_dict() == {"online_target": 0.55, "on_time_target": 1.0, "satisfaction_target": 0.9}
    with pytest.raises(settings_mod.SettingsError, match="online_target"):
        settings_mod.load(environ={"CONGSO_KPI_ONLINE_TARGET": "1.5"})


def _cli(office, *args):
    env = {"CONGSO_DATA_DIR": str(office.data_dir), "CONGSO_CONFIG": None}
    r = CliRunner().invoke(main, ["report", "kpi", *args], env=env)
    assert r.exit_code == 0, (r.output, r.exception)
    return r


def test_cli_json_and_xlsx(office, tmp_path):
    # The CLI runs at the real time: November 2026 is over for it too (F overdue).
    if datetime.now(ZONE) < NOW:
        pytest.skip("the machine's clock is before 1 December 2026")
    k = json.loads(_cli(office, "--month", "2026-11", "--json").stdout)
    assert (k["on_time"]["on_time"], k["on_time"]["counted"], k["on_time"]["share"]) == (2, 6, pytest.approx(1 / 3))
    assert (k["online"]["online"], k["online"]["received"], k["online"]["share"]) == (3, 6, 0.5)
    assert (k["satisfaction"]["satisfied"], k["satisfaction"]["votes"], k["satisfaction"]["flagged_excluded"],
            k["satisfaction"]["share"]) == (3, 6, 1, 0.5)
    assert (k["on_time"]["target"], k["online"]["target"], k["satisfaction"]["target"]) == (1.0, 0.4, 0.9)

    out = tmp_path / "chi-tieu.xlsx"
    r = _cli(office, "--month", "2026-11", "--xlsx", str(out))
    assert "Satisfaction" in r.stdout and "33,3%" in r.stdout
    ws = load_workbook(out).active
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0][0] == "Chỉ tiêu tháng 11/2026"
    assert rows[3] == ["Chỉ tiêu", "Tỷ lệ", "Số liệu", "Mục tiêu", "Kết quả"]
    assert rows[4][:2] == ["Hồ sơ giải quyết đúng hạn", "33,3%"] and rows[4][3:] == ["100,0%", "Chưa đạt"]
    assert rows[4][2].startswith("2/6 hồ sơ đến hạn (trễ hạn 2, chưa giải quyết đã quá hạn 2")
    assert rows[5] == ["Hồ sơ nộp trực tuyến", "50,0%", "3/6 hồ sơ tiếp nhận", "40,0%", "Đạt"]
    assert rows[6][:2] == ["Mức độ hài lòng", "50,0%"] and rows[6][2].startswith("3/6 phiếu hài lòng (loại 1 phiếu")
    assert rows[6][3:] == ["90,0%", "Chưa đạt"]


def test_cli_refuses_a_bad_month(office):
    env = {"CONGSO_DATA_DIR": str(office.data_dir), "CONGSO_CONFIG": None}
    r = CliRunner().invoke(main, ["report", "kpi", "--month", "2026-13"], env=env)
    assert r.exit_code == 1 and "YYYY-MM" in r.output


def test_console_page_for_a_viewer_and_403_for_an_officer(office):
    viewer = office.login("ld")
    r = viewer.get("/reports/kpi?month=2026-11")
    assert r.status_code == 200, r.text[:500]
    text = r.text
    assert "Chỉ tiêu tháng 11/2026" in text
    for fragment in ("Hồ sơ giải quyết đúng hạn", "33,3%", "2/6 hồ sơ đến hạn", "Hồ sơ nộp trực tuyến", "50,0%",
                     "3/6 hồ sơ tiếp nhận", "Mục tiêu: 40,0%", "Mức độ hài lòng", "3/6 phiếu hài lòng",
                     "Mục tiêu: 90,0%", "Chưa đạt", "/reports/kpi.xlsx?month=2026-11"):
        assert fragment in text, fragment
    assert "Nguyễn Thị Thu Hà" not in text  # figures, not people
    x = viewer.get("/reports/kpi.xlsx?month=2026-11")
    assert x.status_code == 200 and 'filename="chi-tieu-2026-11.xlsx"' in x.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws["A5"].value == "Hồ sơ giải quyết đúng hạn" and ws["B5"].value == "33,3%"
    assert viewer.get("/reports/kpi?month=11/2026").status_code == 200
    bad = viewer.get("/reports/kpi?month=2026-13")
    assert bad.status_code == 422 and "Không lập được chỉ tiêu tháng" in bad.text
    assert "/reports/kpi" in viewer.get("/reports").text  # the reports page links to it

    officer = office.login("cuc")
    assert officer.get("/reports/kpi?month=2026-11").status_code == 403
    assert officer.get("/reports/kpi.xlsx?month=2026-11").status_code == 403


# -- the hall TV's kpi page: state/kpi built by the gateway, drawn by the TV's own renderer --------

def test_the_gateway_publishes_the_month_for_the_tv_and_the_tv_draws_it(office):
    from congso.gateway import domains, state
    from congso.protocol import messages, topics

    assert kpi.DOMAIN in domains.DOMAINS and "kpi" in topics.STATE_NAMES
    ctx = state.Context(site="ky-chau", tz=TZ, now=datetime(2026, 11, 30, 18, 0, tzinfo=ZONE), settings=office.settings)
    payload = kpi.build(office.db, ctx)["kpi"]
    assert payload == {
        "month": "2026-11",
        "on_time": {"share": 2 / 6, "part": 2, "whole": 6, "target": 1.0},
        "online": {"share": 0.5, "part": 3, "whole": 6, "target": 0.4},
        "satisfaction": {"share": 0.5, "part": 3, "whole": 6, "target": 0.9},
    }
    wire = messages.validate("kpi", {"v": 1, "version": 7, **payload})  # the contract's schema takes it
    assert "Nguyễn" not in json.dumps(wire, ensure_ascii=False)  # figures only, never a citizen's name

    from signage_helpers import Screen  # SDL dummy driver
    from congso.signage_node import pages
    from congso.signage_node.app import parse_pages

    assert parse_pages(["ratings", "kpi:15"], 10) == [("ratings", 10.0), ("kpi", 15.0)]
    view = pages.View(site_name="UBND xã Kỳ Châu", now=ctx.now, states={"kpi": wire})
    assert pages.slots(view, (1280, 720), ["kpi"]) == [("kpi",)]
    assert pages.slots(pages.View(site_name="x", now=ctx.now, states={}), (1280, 720), ["kpi"]) == []
    for size in ((1280, 720), (3840, 2160)):
        screen = Screen(size)
        screen.draw(view, ("kpi",))
        drawn = {d.tag: d.text for d in screen.drawn()}
        assert drawn["kpi-pct-on_time"] == "33,3%" and drawn["kpi-counts-on_time"] == "2/6 hồ sơ đến hạn"
        assert drawn["kpi-pct-online"] == "50,0%" and drawn["kpi-target-text-online"] == "Mục tiêu 40,0%"
        assert drawn["kpi-pct-satisfaction"] == "50,0%" and drawn["kpi-counts-satisfaction"] == "3/6 lượt đánh giá"
        assert drawn["kpi-target-text-satisfaction"] == "Mục tiêu 90,0%"
        assert any("11/2026" in text for text in drawn.values())
        # The pixels: the on-time share is drawn red (below its target), online green (above it).
        ops = pages.kpi_page(view, size)
        colours = [op.color for op in ops if op.__class__.__name__ == "Text" and op.tag.startswith("kpi-pct-")]
        assert colours == [pages.RED, pages.GREEN, pages.RED]
        bars = [op for op in ops if op.__class__.__name__ == "Box" and op.color in (pages.RED, pages.GREEN)]
        assert len(bars) == 3
        x, y, w, h = bars[1].rect
        assert tuple(screen.surface.get_at((x + w // 2, y + h // 2)))[:3] == pages.GREEN
