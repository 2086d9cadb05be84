"""A TV above one desk ([signage] desk) and the ready page's QR to the portal ([signage] dossier_url)."""

from __future__ import annotations

import pytest

from congso.protocol import settings as settings_mod
from congso.signage_node import pages
from congso.ui import QR, Text, texts
from congso.ui.layout import contains

from signage_helpers import NOW, Screen, dossiers_state, full_view

URL = "https://dichvucong.nghean.gov.vn/tra-cuu?ma={code}"


def _state() -> dict:
    """Two desks: every fourth dossier at "Địa chính", the rest at "Tư pháp - Hộ tịch"."""
    state = dossiers_state(24)
    for i, d in enumerate(state["dossiers"]):
        if i % 4 == 0:
            d["desk"] = "Địa chính"
    return state


def _codes(instructions, suffix: str) -> list[str]:
    return [t.text for t in texts(instructions) if t.tag.endswith(suffix) and t.tag.startswith(("row", "ready"))]


def test_a_desk_tv_shows_only_that_desks_dossiers_and_says_which_desk():
    state = _state()
    desk_codes = {d["code"] for d in state["dossiers"] if d["desk"] == "Địa chính"}
    everyone = full_view(states={"dossiers": state})
    mine = full_view(states={"dossiers": state}, desk="địa chính ")  # compared without case or spaces
    size = (1280, 720)
    board = [c for i in range(pages.dossier_pages(mine, size)) for c in _codes(pages.dossiers_page(mine, size, i), "-code")
             + _codes(pages.dossiers_page(mine, size, i), "-code-overdue")]
    wanted = {d["code"] for d in state["dossiers"] if d["desk"] == "Địa chính" and d["status"] != "returned"}
    assert set(board) == wanted and len(board) == len(wanted)
    ready = _codes(pages.ready_page(mine, size), "-code")
    assert set(ready) == {d["code"] for d in state["dossiers"] if d["code"] in desk_codes and d["status"] == "ready"}
    assert ready and len(ready) < len(_codes(pages.ready_page(everyone, size), "-code"))
    title = [t.text for t in texts(pages.dossiers_page(mine, size)) if t.tag == "page-title"][0]
    assert title == "Tình hình giải quyết hồ sơ — Quầy địa chính"
    assert "Quầy" in [t.text for t in texts(pages.ready_page(mine, size)) if t.tag == "page-title"][0]
    assert [t.text for t in texts(pages.dossiers_page(everyone, size)) if t.tag == "page-title"] == ["Tình hình giải quyết hồ sơ"]
    # The tiles count this desk's dossiers, not the office's.
    counts = {t.tag: t.text for t in texts(pages.dossiers_page(mine, size)) if t.tag.startswith("count-")}
    assert counts["count-ready"] == str(len(ready))
    assert counts["count-processing"] == str(sum(d["status"] == "processing" for d in state["dossiers"] if d["code"] in desk_codes))


def test_a_desk_with_no_dossiers_says_so_and_its_ready_page_is_skipped():
    view = full_view(states={"dossiers": _state()}, desk="Văn hóa")
    out = pages.dossiers_page(view, (1280, 720))
    assert [t.text for t in texts(out) if t.tag == "message"] == ["Hiện không có hồ sơ đang chờ giải quyết"]
    assert pages.ready_pages(view, (1280, 720)) == 0


def test_the_ready_page_draws_a_qr_with_the_dossiers_portal_address_beside_each_card():
    view = full_view(states={"dossiers": _state()}, dossier_url=URL)
    size = (1280, 720)
    out = pages.ready_page(view, size)
    codes = _codes(out, "-code")
    qrs = [i for i in out if isinstance(i, QR)]
    assert codes and [q.data for q in qrs] == [URL.replace("{code}", c) for c in codes]
    # Each code square, beside (not over) its card's texts.
    card_texts = [t for t in texts(out) if t.tag.startswith("ready")]
    for q in qrs:
        assert q.rect[2] == q.rect[3] and q.rect[2] >= pages.px(60, size)
        for t in card_texts:
            x, y, w, h = t.rect
            assert x + w <= q.rect[0] or x >= q.rect[0] + q.rect[2] or y + h <= q.rect[1] or y >= q.rect[1] + q.rect[3]
    # Drawn: dark modules inside the square.
    screen = Screen(size)
    screen.draw(view, ("ready", 0))
    x, y, w, h = qrs[0].rect
    dark = sum(screen.surface.get_at((x + i, y + j))[:3] == (0, 0, 0) for i in range(0, w, 2) for j in range(0, h, 2))
    assert dark > (w // 2) * (h // 2) // 5
    # A code with characters a URL cannot hold is escaped.
    assert pages.dossier_link(view, "H40 12/x") == URL.replace("{code}", "H40%2012%2Fx")


def test_no_qr_without_dossier_url():
    view = full_view(states={"dossiers": _state()})
    assert not [i for i in pages.ready_page(view, (1280, 720)) if isinstance(i, QR)]
    assert pages.dossier_link(view, "H40") == ""


@pytest.mark.parametrize("size", [(1280, 720), (3840, 2160), (1080, 1920)])
def test_the_desk_ready_page_with_qr_keeps_every_text_inside_its_box(size):
    screen = Screen(size)
    view = full_view(states={"dossiers": dossiers_state(60)}, desk="Tư pháp - Hộ tịch", dossier_url=URL)
    slots = [s for s in pages.slots(view, size, ["dossiers", "ready"])]
    assert {s[0] for s in slots} == {"dossiers", "ready"}
    for slot in slots:
        screen.draw(view, slot)
        for d in screen.drawn():
            if d.tag != "ticker":
                assert contains(d.box, d.ink), f"{size} {slot}: {d.tag} {d.text!r} ink outside its box"


@pytest.mark.parametrize("bad", ["https://dichvucong.nghean.gov.vn/tra-cuu",  # no {code}
                                 "ftp://portal/{code}", "javascript:alert('{code}')", "portal.gov.vn/{code}",
                                 "https://portal/{code}/{id}", "https://portal/{code} x"])
def test_a_bad_dossier_url_is_refused_at_settings_load(bad):
    with pytest.raises(settings_mod.SettingsError, match=r"\[signage\] dossier_url"):
        settings_mod.load(environ={"CONGSO_SIGNAGE_DOSSIER_URL": bad})


def test_good_settings_load_and_reach_the_tv_view(tmp_path):
    cfg = tmp_path / "congso.toml"
    cfg.write_text(f'[signage]\ndesk = "Địa chính"\ndossier_url = "{URL}"\n', encoding="utf-8")
    s = settings_mod.load(cfg, environ={})
    assert s.signage.desk == "Địa chính" and s.signage.dossier_url == URL
    assert settings_mod.load(environ={}).signage.dossier_url == ""
    with pytest.raises(settings_mod.SettingsError, match="dossier_url"):
        bad = tmp_path / "bad.toml"
        bad.write_text('[signage]\ndossier_url = "http://x/tra-cuu"\n', encoding="utf-8")
        settings_mod.load(bad, environ={})


def test_the_real_tv_reads_its_desk_from_settings_and_shows_only_that_desk(broker, spawn, tmp_path):
    """The TV process: [signage] desk from its environment, a board with two desks from the broker."""
    from congso.protocol import messages

    from conftest import SITE, wait_for
    from mqtt_helpers import RawClient

    shots = tmp_path / "shots"
    env = broker.env("tv-1", tmp_path / "tv", SDL_VIDEODRIVER="dummy", CONGSO_DISPLAY_WIDTH="1280",
                     CONGSO_DISPLAY_HEIGHT="720", CONGSO_SIGNAGE_CEC="none", CONGSO_SIGNAGE_ON_HOURS="00:00-24:00",
                     CONGSO_SIGNAGE_PAGES="dossiers",
                     CONGSO_SIGNAGE_ON_DAYS="monday,tuesday,wednesday,thursday,friday,saturday,sunday",
                     CONGSO_SIGNAGE_DESK="Địa chính", CONGSO_SIGNAGE_DOSSIER_URL=URL)
    tv = spawn(["signage", "run", "--screenshot-dir", str(shots)], env, name="tv")
    state = dossiers_state(8)
    for i, d in enumerate(state["dossiers"]):
        d["desk"] = "Địa chính" if i < 2 else "Tư pháp - Hộ tịch"
    mine = [d["code"] for d in state["dossiers"][:2]]
    others = [d["code"] for d in state["dossiers"][2:]]
    gw = RawClient(broker.port, "technician", broker.credentials["technician"], client_id="fake-gateway")
    topic = f"congso/{SITE}/state/dossiers"
    try:
        gw.publish(topic, messages.encode("dossiers", state), retain=True)

        def screen() -> str:
            try:
                return (shots / "screen.txt").read_text(encoding="utf-8")
            except FileNotFoundError:
                return ""
        wait_for(lambda: all(c in screen() for c in mine), 20, "the desk's dossiers on the TV", tv)
        text = screen()
        assert "Quầy Địa chính" in text
        assert not [c for c in others if c in text]
        gw.publish(topic, b"", retain=True)  # leave the shared broker clean
    finally:
        gw.close()
