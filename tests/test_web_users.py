"""*Người dùng*: the admin's page for users, roles, desks, passwords, API tokens and the audit log."""

from __future__ import annotations

import re
import time

import pytest

from congso.gateway import accounts, audit
from web_helpers import PASSWORD, Console, csrf_in

NEW_PASSWORD = "mat-khau-moi-dai-hon"


@pytest.fixture
def console(tmp_path):
    c = Console(tmp_path)
    c.staff("NV007", "Trần Thị Lan")
    c.user("chanh-vp", "admin")
    return c


def login_ok(console, name, password=PASSWORD) -> bool:
    c = console.client()
    form = c.get("/login")
    return c.post("/login", data={"username": name, "password": password,
                                  "csrf_token": csrf_in(form.text)}).status_code == 303


def add(admin, **fields):
    data = {"name": "", "role": "clerk", "staff_id": "", "desks": "", "password": NEW_PASSWORD,
            "password2": NEW_PASSWORD, "csrf_token": admin.csrf, **fields}
    return admin.post("/users/new", data=data)


def test_the_list_shows_each_user_in_vietnamese(console):
    console.user("ms-lan", "officer", staff_id="NV007", desks=("mot-cua-1", "mot-cua-2"))
    admin = console.login("chanh-vp")
    page = admin.get("/users")
    assert page.status_code == 200
    text = page.text
    row = text[text.index("ms-lan"):]
    row = row[:row.index("</tr>")]
    assert "Cán bộ một cửa" in row and "NV007" in row and "mot-cua-1, mot-cua-2" in row
    assert "Đang hoạt động" in row and "chưa" in row  # never logged in
    admin_row = text[text.index(">chanh-vp<"):]
    admin_row = admin_row[:admin_row.index("</tr>")]
    assert "Quản trị" in admin_row and re.search(r"\d\d:\d\d \d\d/\d\d/\d{4}", admin_row)  # last login, Vietnamese form


def test_add_a_user_who_then_logs_in(console):
    admin = console.login("chanh-vp")
    r = add(admin, name="ms-lan", role="officer", staff_id="NV007", desks="mot-cua-1, mot-cua-2")
    assert r.status_code == 303 and r.headers["location"] == "/users"
    assert "ms-lan" in admin.get("/users").text  # the flash and the row
    row = accounts.get_user(console.db, "ms-lan")
    assert row["role"] == "officer" and row["staff_id"] == "NV007"
    assert accounts.user_desks(console.db, "ms-lan") == ["mot-cua-1", "mot-cua-2"]
    assert login_ok(console, "ms-lan", NEW_PASSWORD)


@pytest.mark.parametrize("fields, words", [
    ({"name": "vt", "password2": "something-else-1"}, "không khớp"),
    ({"name": "vt", "password": "ngan-9-kt", "password2": "ngan-9-kt"}, "ít nhất 10 ký tự"),
    ({"name": "ms-lan", "role": "officer"}, "mã nhân viên"),
    ({"name": "vt", "staff_id": "NV999"}, "Không có nhân viên"),
    ({"name": "<b>x</b>"}, "Tên đăng nhập chỉ gồm"),
    ({"name": "chanh-vp"}, "đã có"),
    ({"name": "vt", "role": "superuser"}, "role"),
])
def test_a_bad_new_user_is_refused_with_the_form_kept(console, fields, words):
    admin = console.login("chanh-vp")
    before = [u["name"] for u in accounts.list_users(console.db)]
    r = add(admin, **fields)
    assert r.status_code == 422
    assert words in r.text
    assert [u["name"] for u in accounts.list_users(console.db)] == before
    if fields["name"] != "<b>x</b>":
        assert f'value="{fields["name"]}"' in r.text  # what was typed is kept...
    else:
        assert "<b>x</b>" not in r.text  # ...escaped
    assert NEW_PASSWORD not in r.text and "ngan-9-kt" not in r.text  # ...but never a password


def test_disable_ends_the_users_sessions_at_once_and_enable_lets_them_back(console):
    console.user("vt", "clerk")
    clerk = console.login("vt")
    assert clerk.get("/staff").status_code == 200
    admin = console.login("chanh-vp")
    r = admin.post("/users/vt/disable", data={"csrf_token": admin.csrf})
    assert r.status_code == 303
    assert clerk.get("/staff").status_code == 303
    assert not login_ok(console, "vt")
    assert "Đã khoá" in admin.get("/users").text
    assert admin.post("/users/vt/enable", data={"csrf_token": admin.csrf}).status_code == 303
    assert login_ok(console, "vt")


def test_reset_password_ends_sessions_and_only_the_new_one_works(console):
    console.user("vt", "clerk")
    clerk = console.login("vt")
    admin = console.login("chanh-vp")
    r = admin.post("/users/vt/password", data={"password": NEW_PASSWORD, "password2": "khac-han-nhau-1",
                                              "csrf_token": admin.csrf})
    assert r.status_code == 422 and "không khớp" in r.text
    assert login_ok(console, "vt")
    r = admin.post("/users/vt/password", data={"password": NEW_PASSWORD, "password2": NEW_PASSWORD,
                                              "csrf_token": admin.csrf})
    assert r.status_code == 303
    assert clerk.get("/staff").status_code == 303
    assert not login_ok(console, "vt") and login_ok(console, "vt", NEW_PASSWORD)


def test_change_role_and_desks(console):
    console.user("vt", "clerk")
    clerk = console.login("vt")
    admin = console.login("chanh-vp")
    r = admin.post("/users/vt/role", data={"role": "viewer", "staff_id": "", "csrf_token": admin.csrf})
    assert r.status_code == 303
    assert accounts.get_user(console.db, "vt")["role"] == "viewer"
    assert clerk.get("/staff").status_code == 303  # logs in again under the new role
    viewer = console.login("vt")
    assert viewer.get("/staff").status_code == 403
    # an officer needs a staff id
    r = admin.post("/users/vt/role", data={"role": "officer", "staff_id": "", "csrf_token": admin.csrf})
    assert r.status_code == 422 and accounts.get_user(console.db, "vt")["role"] == "viewer"
    r = admin.post("/users/vt/role", data={"role": "officer", "staff_id": "NV007", "csrf_token": admin.csrf})
    assert r.status_code == 303
    r = admin.post("/users/vt/desks", data={"desks": "mot-cua-2 mot-cua-1,mot-cua-2", "csrf_token": admin.csrf})
    assert r.status_code == 303
    assert accounts.user_desks(console.db, "vt") == ["mot-cua-1", "mot-cua-2"]
    page = admin.get("/users/vt/edit")
    assert page.status_code == 200 and 'value="mot-cua-1, mot-cua-2"' in page.text and "Cán bộ một cửa" in page.text
    from test_web_security import INLINE
    assert not INLINE.search(page.text)  # the CSP forbids inline script and style
    assert admin.get("/users/nobody/edit").status_code == 404
    assert admin.post("/users/nobody/disable", data={"csrf_token": admin.csrf}).status_code == 404


def test_the_last_active_admin_cannot_disable_or_demote_themselves(console):
    admin = console.login("chanh-vp")
    for url, data in (("/users/chanh-vp/disable", {}), ("/users/chanh-vp/role", {"role": "clerk", "staff_id": ""})):
        r = admin.post(url, data={**data, "csrf_token": admin.csrf})
        assert r.status_code == 422 and "quản trị viên cuối cùng" in r.text
    assert accounts.get_user(console.db, "chanh-vp")["role"] == "admin"
    assert accounts.get_user(console.db, "chanh-vp")["active"] == 1
    assert admin.get("/users").status_code == 200  # still logged in
    with pytest.raises(accounts.AccountError):
        accounts.set_active(console.db, "chanh-vp", False)
    with pytest.raises(accounts.AccountError):
        accounts.set_role(console.db, "chanh-vp", "viewer")
    # a disabled second admin does not count; an active one does
    console.user("pho-vp", "admin")
    accounts.set_active(console.db, "pho-vp", False)
    with pytest.raises(accounts.AccountError):
        accounts.set_active(console.db, "chanh-vp", False)
    accounts.set_active(console.db, "pho-vp", True)
    r = admin.post("/users/chanh-vp/role", data={"role": "clerk", "staff_id": "", "csrf_token": admin.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert accounts.get_user(console.db, "chanh-vp")["role"] == "clerk"
    # and the CLI says so too
    from conftest import run_congso
    r = run_congso("web", "user", "disable", "pho-vp", CONGSO_DATA_DIR=str(console.data_dir))
    assert r.returncode != 0 and "last active admin" in r.stderr


def test_tokens_created_with_scopes_shown_once_listed_and_revoked(console):
    admin = console.login("chanh-vp")
    r = admin.post("/users/tokens/new", data={"name": "motcua", "scope": ["dossiers:read", "dossiers:write"],
                                              "csrf_token": admin.csrf})
    assert r.status_code == 200
    token = re.search(r"cs_[A-Za-z0-9_\-]{30,}", r.text).group(0)
    assert "chỉ hiện một lần" in r.text
    from test_web_security import INLINE
    assert not INLINE.search(r.text)
    assert accounts.token_scopes(console.db, token) == ("motcua", ["dossiers:read", "dossiers:write"])
    listing = admin.get("/users").text
    assert token not in listing
    row = listing[listing.index(">motcua<"):]
    row = row[:row.index("</tr>")]
    assert "Đọc hồ sơ" in row and "Cập nhật hồ sơ" in row and "Còn hiệu lực" in row
    # the same name while it lives, or no scope at all: refused
    r = admin.post("/users/tokens/new", data={"name": "motcua", "scope": "reports:read", "csrf_token": admin.csrf})
    assert r.status_code == 422 and "thu hồi" in r.text
    r = admin.post("/users/tokens/new", data={"name": "trong", "csrf_token": admin.csrf})
    assert r.status_code == 422 and not re.search(r"cs_[A-Za-z0-9_\-]{30,}", r.text)
    assert admin.post("/users/tokens/motcua/revoke", data={"csrf_token": admin.csrf}).status_code == 303
    assert accounts.token_scopes(console.db, token) is None
    assert "Đã thu hồi" in admin.get("/users").text
    assert admin.post("/users/tokens/motcua/revoke", data={"csrf_token": admin.csrf}).status_code == 422


def test_the_audit_log_searches_pages_newest_first_and_escapes(console):
    admin = console.login("chanh-vp")
    db = console.db
    for i in range(120):
        audit.record(db, actor="vt" if i % 2 else "cli-user", via="web" if i % 2 else "cli",
                     action="staff.add", target=f"NV{i:03d}", detail={"name": f"Người {i}"})
    audit.record(db, actor="vt", via="web", action="announce.add", target="x", detail="<script>alert(1)</script>")
    db.execute("UPDATE audit_log SET at = '2025-01-15T09:00:00+07:00' WHERE target = 'NV000'")
    db.conn.commit()

    first = admin.get("/users/audit")
    assert first.status_code == 200
    assert "121 dòng" in first.text
    body = first.text
    assert body.index("announce.add") < body.index("NV119") < body.index("NV118")  # newest first
    assert "<script>alert(1)" not in body and "&lt;script&gt;" in body
    assert "Trang 1/3" in body
    assert "Thêm nhân viên" in body and "trang web" in body and "lệnh congso" in body  # in words staff read
    last = admin.get("/users/audit?page=3")
    assert "NV000" in last.text and "NV119" not in last.text

    r = admin.get("/users/audit", params={"q": "NV042"})
    assert "NV042" in r.text and "NV043" not in r.text and "1 dòng" in r.text
    r = admin.get("/users/audit", params={"actor": "cli-user"})
    assert "60 dòng" in r.text and ">NV118<" in r.text and ">NV119<" not in r.text
    r = admin.get("/users/audit", params={"day_from": "2025-01-01", "day_to": "15/01/2025"})
    assert "1 dòng" in r.text and "NV000" in r.text
    r = admin.get("/users/audit", params={"q": "Người", "actor": "vt", "page": "2"})
    assert "Trang 2/2" in r.text and "q=Ng" in r.text  # the pager keeps the search
    r = admin.get("/users/audit", params={"day_from": "31/02/2025"})
    assert r.status_code == 422 and "Ngày không hợp lệ" in r.text


def test_the_audit_page_is_fast_on_a_years_rows(console):
    db = console.db
    rows = [("2026-%02d-%02dT08:%02d:00+07:00" % (1 + i % 12, 1 + i % 28, i % 60), f"user{i % 7}", "web",
             "dossier.status", f"HS-{i:05d}", '{"to": "ready"}') for i in range(30000)]
    with db.conn:
        db.conn.executemany("INSERT INTO audit_log(at, actor, via, action, target, detail) VALUES (?,?,?,?,?,?)", rows)
    admin = console.login("chanh-vp")
    for params in ({}, {"page": "300"}, {"q": "HS-0123"}, {"day_from": "2026-03-01", "day_to": "2026-03-31"},
                   {"actor": "user3", "page": "20"}):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            assert admin.get("/users/audit", params=params).status_code == 200
            times.append(time.perf_counter() - t0)
        assert sorted(times)[2] < 0.15, (params, times)
