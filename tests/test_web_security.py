"""The console's security contract (``../shared/OFFICE.md``: Users and sessions, Integration API).

Login, the lockout, logout, CSRF on every state-changing route, no default
users, the password rule (page and CLI), ``congso web user add/disable`` as
real processes, idle sessions, the security headers, API tokens, the body
limit, and ``congso web run``: refused beyond loopback without TLS, HTTPS
with the office CA's certificate (verified against that CA) with it.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import ssl
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from congso.gateway import accounts
from congso.ops import office_ca
from congso.web import access
from congso.web.app import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from conftest import run_congso, wait_for
from test_web_access import UNSAFE, api_routes, changed, client_of, dump
from web_helpers import PASSWORD, Console, csrf_in

WRONG = "sai-mat-khau-0000"


def env_of(console: Console, **extra) -> dict[str, str]:
    return {"CONGSO_DATA_DIR": str(console.data_dir), "CONGSO_SITE_ID": "ky-chau", **extra}


def client_at(console: Console, address: str) -> TestClient:
    return TestClient(console.app, base_url="http://127.0.0.1:8080", follow_redirects=False, client=(address, 50000))


def try_login(client, name: str, password: str):
    form = client.get("/login")
    return client.post("/login", data={"username": name, "password": password, "csrf_token": csrf_in(form.text)})


def logged_in(client) -> bool:
    r = client.get("/users/audit")
    return r.status_code != 303


@pytest.fixture
def console(tmp_path):
    c = Console(tmp_path)
    c.user("chanh-vp", "admin")
    c.user("vt", "clerk")
    return c


# -- login --------------------------------------------------------------------------------------
def test_login_form_success_cookie_and_wrong_password(console):
    c = console.client()
    form = c.get("/login")
    assert form.status_code == 200
    assert '<form method="post" action="/login"' in form.text
    for field in ('name="username"', 'name="password"', 'name="csrf_token"'):
        assert field in form.text
    token = csrf_in(form.text)

    wrong = c.post("/login", data={"username": "chanh-vp", "password": WRONG, "csrf_token": token})
    assert wrong.status_code != 303 and SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    assert "không đúng" in wrong.text
    assert not logged_in(c)

    ok = c.post("/login", data={"username": "chanh-vp", "password": PASSWORD, "csrf_token": token})
    assert ok.status_code == 303
    cookie = [v for k, v in ok.headers.multi_items() if k == "set-cookie" and v.startswith(SESSION_COOKIE + "=")]
    assert cookie, ok.headers
    attrs = cookie[0].lower()
    assert "httponly" in attrs
    assert re.search(r"samesite=(lax|strict)", attrs)
    assert "secure" not in attrs  # plain HTTP on loopback; under TLS see test_web_run_serves_https_...
    assert logged_in(c)
    # only a hash of the cookie is kept
    value = cookie[0].split(";")[0].split("=", 1)[1]
    assert console.db.execute("SELECT count(*) FROM web_sessions WHERE id_hash = ?", [value]).fetchone()[0] == 0


def test_login_without_the_forms_token_is_refused(console):
    c = console.client()
    c.get("/login")
    r = c.post("/login", data={"username": "chanh-vp", "password": PASSWORD})
    assert r.status_code == 403 and not logged_in(c)
    r = c.post("/login", data={"username": "chanh-vp", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403 and not logged_in(c)
    fresh = console.client()  # a token from another browser's form is no good either
    token = csrf_in(fresh.get("/login").text)
    other = console.client()
    r = other.post("/login", data={"username": "chanh-vp", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 403 and not logged_in(other)


def test_five_failures_for_one_user_name_lock_it_whatever_the_password(console):
    # from five different addresses, so only the user name's count reaches 5
    for i in range(accounts.LOCK_AFTER):
        r = try_login(client_at(console, f"10.0.0.{i + 1}"), "vt", WRONG)
        assert r.status_code != 303
    c = client_at(console, "10.0.0.99")
    r = try_login(c, "vt", PASSWORD)
    assert r.status_code != 303 and not logged_in(c)
    assert "thử lại sau" in r.text and "giây" in r.text
    # the lock lasts at least 60 s
    left = console.db.execute("SELECT locked_until FROM web_login_failures WHERE key = 'user:vt'").fetchone()[0]
    assert left - time.time() >= 59
    # another user from a fresh address is not locked
    assert try_login(client_at(console, "10.0.0.98"), "chanh-vp", PASSWORD).status_code == 303


def test_five_failures_from_one_address_lock_it_for_every_user_name(console):
    c = client_at(console, "192.168.1.50")
    for i in range(accounts.LOCK_AFTER):
        assert try_login(c, f"no-such-{i}", WRONG).status_code != 303
    r = try_login(c, "chanh-vp", PASSWORD)
    assert r.status_code != 303 and "thử lại sau" in r.text
    assert not logged_in(c)
    assert try_login(client_at(console, "192.168.1.51"), "chanh-vp", PASSWORD).status_code == 303


def test_the_lock_holds_for_60_seconds_then_lifts(console):
    now = time.time()
    for _ in range(accounts.LOCK_AFTER):
        assert accounts.login(console.db, "vt", WRONG, "1.2.3.4", now=now).user is None
    assert accounts.login(console.db, "vt", PASSWORD, "5.6.7.8", now=now + 59).locked_for_s > 0
    assert accounts.login(console.db, "vt", PASSWORD, "5.6.7.8", now=now + 61).user is not None


def test_logout_needs_the_token_and_ends_the_session(console):
    c = console.login("vt")
    assert c.post("/logout").status_code == 403
    assert logged_in(c)
    r = c.post("/logout", data={"csrf_token": c.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert console.db.execute("SELECT count(*) FROM web_sessions WHERE user = 'vt'").fetchone()[0] == 0
    assert not logged_in(c)
    # the old cookie is dead even when sent again by hand
    stale = console.client()
    stale.cookies.set(SESSION_COOKIE, c.cookies.get(SESSION_COOKIE) or "gone")
    assert stale.get("/users").status_code == 303


# -- CSRF ---------------------------------------------------------------------------------------
def test_every_state_changing_route_refuses_a_missing_or_wrong_csrf_token(console):
    admin = console.login("chanh-vp")
    routes = [(m, p, r) for m, p, r in api_routes(console.app)
              if m in UNSAFE and access.rule_of(r.endpoint) and not access.rule_of(r.endpoint).public]
    assert len(routes) >= 10
    bad = []
    for method, path, _route in routes:
        api = path.startswith("/api/")
        # One character changed (a token that starts with "x" must not stay right: 1 run in 64).
        wrong = ("y" if admin.csrf[0] == "x" else "x") + admin.csrf[1:]
        attempts = [
            ("no token", {}, {}),
            ("wrong form field", {}, {"csrf_token": wrong}),
            ("wrong header", {"X-CSRF-Token": wrong}, {}),
            ("empty header", {"X-CSRF-Token": ""}, {"csrf_token": ""}),
        ]
        for what, headers, data in attempts:
            before = dump(console.db_path)
            if api:
                r = admin.request(method, path, json={"csrf_token": admin.csrf}, headers=headers)
            else:
                r = admin.request(method, path, data=data, headers=headers)
            if r.status_code != 403:
                bad.append(f"{method} {path} ({what}) -> {r.status_code}")
            if changed(before, dump(console.db_path)):
                bad.append(f"{method} {path} ({what}) changed data")
    assert not bad, "\n".join(bad)
    assert logged_in(admin)  # the session itself was fine all along


def test_the_csrf_header_is_as_good_as_the_form_field(console):
    admin = console.login("chanh-vp")
    r = admin.post("/users/new", data={"name": "nv-moi", "role": "viewer", "password": "dai-hon-10-ky-tu",
                                      "password2": "dai-hon-10-ky-tu"}, headers={"X-CSRF-Token": admin.csrf})
    assert r.status_code == 303
    assert accounts.get_user(console.db, "nv-moi") is not None
    # another user's session token is not this session's
    other = console.login("vt")
    r = admin.post("/users/new", data={"name": "nv-khac", "role": "viewer", "password": "dai-hon-10-ky-tu",
                                      "password2": "dai-hon-10-ky-tu", "csrf_token": other.csrf})
    assert r.status_code == 403 and accounts.get_user(console.db, "nv-khac") is None


# -- users and passwords ----------------------------------------------------------------------
def test_a_fresh_database_has_no_users_and_nothing_logs_in(tmp_path):
    console = Console(tmp_path)
    assert console.db.execute("SELECT count(*) FROM web_users").fetchone()[0] == 0
    for i, (name, password) in enumerate([("admin", "admin"), ("admin", ""), ("admin", "admin123456"),
                                          ("congso", "congso"), ("root", "password123")]):
        c = client_at(console, f"10.1.0.{i}")
        assert try_login(c, name, password).status_code != 303
        assert not logged_in(c)
    listed = run_congso("web", "user", "list", "--json", **env_of(console))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == ""  # --json prints one line per user: none


def test_a_short_password_is_refused_by_the_library_the_page_and_the_cli(console):
    with pytest.raises(ValueError):
        accounts.add_user(console.db, "ngan", "viewer", "123456789")
    admin = console.login("chanh-vp")
    r = admin.post("/users/new", data={"name": "ngan", "role": "viewer", "password": "123456789",
                                      "password2": "123456789", "csrf_token": admin.csrf})
    assert r.status_code == 422 and "ít nhất 10 ký tự" in r.text
    assert accounts.get_user(console.db, "ngan") is None
    r = admin.post("/users/vt/password", data={"password": "ngan", "password2": "ngan", "csrf_token": admin.csrf})
    assert r.status_code == 422
    assert try_login(console.client(), "vt", PASSWORD).status_code == 303  # the old one still works
    cli = run_congso("web", "user", "add", "ngan", "--role", "viewer", input="123456789\n", **env_of(console))
    assert cli.returncode != 0 and "10 characters" in cli.stderr
    assert accounts.get_user(console.db, "ngan") is None


def test_cli_user_add_reads_one_line_of_stdin_and_the_user_logs_in(console):
    r = run_congso("web", "user", "add", "ms-lan", "--role", "clerk", input="mat-khau-cua-lan\nthis line is not read\n",
                   **env_of(console))
    assert r.returncode == 0, r.stderr
    row = accounts.get_user(console.db, "ms-lan")
    assert row["role"] == "clerk" and row["active"] == 1
    assert "mat-khau-cua-lan" not in row["password_hash"] and row["password_hash"].startswith("$argon2")
    assert try_login(console.client(), "ms-lan", "mat-khau-cua-lan").status_code == 303
    assert try_login(client_at(console, "10.2.0.1"), "ms-lan", "this line is not read").status_code != 303


def test_cli_user_disable_ends_a_live_session_at_once(console):
    c = console.login("vt")
    assert logged_in(c)
    r = run_congso("web", "user", "disable", "vt", **env_of(console))
    assert r.returncode == 0, r.stderr
    assert c.get("/").status_code == 303 and not logged_in(c)
    assert try_login(console.client(), "vt", PASSWORD).status_code != 303


def test_an_idle_session_expires(tmp_path):
    console = Console(tmp_path, CONGSO_WEB_IDLE_MINUTES="1")
    console.user("vt", "clerk")
    c = console.login("vt")
    assert logged_in(c)
    # a minute and a half without a request (the stored last request moved back: the server's own clock)
    console.db.execute("UPDATE web_sessions SET last_seen = last_seen - 90 WHERE user = 'vt'")
    console.db.conn.commit()
    assert c.get("/users/audit").status_code == 303
    assert not logged_in(c)
    # and within the idle time it lives on (last_seen is touched by use)
    c = console.login("vt")
    console.db.execute("UPDATE web_sessions SET last_seen = last_seen - 50 WHERE user = 'vt'")
    console.db.conn.commit()
    assert logged_in(c)


def test_the_library_expires_sessions_with_its_clock(console):
    now = time.time()
    cookie = accounts.new_session(console.db, "vt", "1.1.1.1", now=now)
    assert accounts.session(console.db, cookie, idle_s=60, now=now + 59) is not None
    assert accounts.session(console.db, cookie, idle_s=60, now=now + 59 + 61) is None
    # a session in use lives on past the idle time, even with a short setting
    cookie = accounts.new_session(console.db, "vt", "1.1.1.1", now=now)
    for seconds in (40, 80, 120, 160):
        assert accounts.session(console.db, cookie, idle_s=60, now=now + seconds) is not None, seconds
    assert accounts.session(console.db, cookie, idle_s=60, now=now + 160 + 61) is None


# -- headers --------------------------------------------------------------------------------------
def _check_headers(r, where: str, cached_ok: bool = False) -> None:
    csp = r.headers.get("content-security-policy", "")
    assert csp, where
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, where
    assert "script-src 'self'" in csp, where
    assert "frame-ancestors 'none'" in csp or r.headers.get("x-frame-options") == "DENY", where
    assert r.headers.get("x-frame-options") == "DENY", where
    if not cached_ok:
        assert "no-store" in r.headers.get("cache-control", ""), where


def _is_page_or_report(r) -> bool:
    kind = r.headers.get("content-type", "")
    return "html" in kind or "attachment" in r.headers.get("content-disposition", "") or any(
        k in kind for k in ("csv", "spreadsheet", "json"))


INLINE = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>|\sstyle\s*=|\son[a-z]+\s*=", re.I)


def test_security_headers_on_pages_and_reports_and_no_inline_script_or_style(console):
    anon = console.client()
    _check_headers(anon.get("/login"), "/login")
    admin = client_of(console)
    r = try_login(admin, "chanh-vp", PASSWORD)
    assert r.status_code == 303
    pages = [p for m, p, r in api_routes(console.app) if m == "GET" and "{" not in r.path
             and not p.startswith("/api/") and p != "/healthz"]
    assert "/users" in pages and len(pages) >= 8
    bad = []
    for path in pages:
        r = admin.get(path)
        try:
            # no-store on pages and reports (an image such as a TV preview may be cached privately)
            _check_headers(r, path, cached_ok=not _is_page_or_report(r))
        except AssertionError:
            bad.append(f"{path}: headers {dict(r.headers)}")
        if "html" in r.headers.get("content-type", ""):
            m = INLINE.search(r.text)
            if m:
                bad.append(f"{path}: inline {m.group(0)!r}")
    assert not bad, "\n".join(bad)
    # a report download is not kept by the browser either
    token = accounts.create_token(console.db, "bang-cong", "reports:read")
    r = console.client().get("/api/v1/reports/attendance?month=2026-11", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert "no-store" in r.headers.get("cache-control", "")
    r = console.client().get("/api/v1/reports/attendance?month=2026-11&format=xlsx",
                             headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert "no-store" in r.headers.get("cache-control", "")


# -- tokens and the API -----------------------------------------------------------------------
def _is_error(r, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error", "field"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert body["field"] is None or isinstance(body["field"], str)


def test_tokens_printed_once_hashed_scoped_revoked(console):
    made = run_congso("web", "token", "create", "motcua", "--scope", "dossiers:read,dossiers:write", **env_of(console))
    assert made.returncode == 0, made.stderr
    lines = made.stdout.split()
    assert len(lines) == 1, made.stdout
    token = lines[0]
    assert len(token) >= 32 and token not in made.stderr
    # only a hash is kept: the text is nowhere in the database file
    row = console.db.execute("SELECT token_hash, scopes FROM api_tokens WHERE name = 'motcua'").fetchone()
    assert row[0] != token and len(row[0]) == 64 and row[1] == "dossiers:read,dossiers:write"
    console.db.conn.execute("PRAGMA wal_checkpoint(FULL)")
    raw = b"".join(p.read_bytes() for p in console.data_dir.glob("gateway.sqlite*"))
    assert token.encode() not in raw
    listed = run_congso("web", "token", "list", "--json", **env_of(console))
    assert token not in listed.stdout and "motcua" in listed.stdout

    c = console.client()
    auth = {"Authorization": f"Bearer {token}"}
    assert c.get("/api/v1/dossiers", headers=auth).status_code == 200
    _is_error(c.get("/api/v1/dossiers"), 401)
    _is_error(c.get("/api/v1/dossiers", headers={"Authorization": "Bearer cs_nope"}), 401)
    _is_error(c.get("/api/v1/dossiers", headers={"Authorization": f"Basic {token}"}), 401)
    _is_error(c.get("/api/v1/reports/attendance?month=2026-11", headers=auth), 403)  # wrong scope

    big = {"applicant": "Nguyễn Văn A" * 6000, "procedure": "x", "received_at": "2026-11-23T08:00:00+07:00",
           "due_at": None, "status": "received"}
    before = dump(console.db_path)
    _is_error(c.put("/api/v1/dossiers/HS-BIG", json=big, headers=auth), 413)
    # streamed without a Content-Length, the limit holds too
    body = json.dumps(big).encode()
    r = c.put("/api/v1/dossiers/HS-BIG", content=iter([body[i:i + 8192] for i in range(0, len(body), 8192)]),
              headers={**auth, "Content-Type": "application/json"})
    _is_error(r, 413)
    assert not changed(before, dump(console.db_path))

    revoked = run_congso("web", "token", "revoke", "motcua", **env_of(console))
    assert revoked.returncode == 0, revoked.stderr
    _is_error(c.get("/api/v1/dossiers", headers=auth), 401)


def test_token_shown_once_on_the_page_and_never_again(console):
    admin = console.login("chanh-vp")
    r = admin.post("/users/tokens/new", data={"name": "script", "scope": ["reports:read"], "csrf_token": admin.csrf})
    assert r.status_code == 200
    found = re.findall(r"cs_[A-Za-z0-9_\-]{30,}", r.text)
    assert len(set(found)) == 1
    token = found[0]
    assert "no-store" in r.headers["cache-control"]
    assert token not in admin.get("/users").text
    assert token not in admin.get("/users/audit").text
    got = console.client().get("/api/v1/reports/attendance?month=2026-11", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200
    r = admin.post("/users/tokens/script/revoke", data={"csrf_token": admin.csrf})
    assert r.status_code == 303
    got = console.client().get("/api/v1/reports/attendance?month=2026-11", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 401


# -- congso web run ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_web_run_beyond_loopback_without_tls_refuses_and_says_how_to_fix(console):
    r = run_congso("web", "run", timeout=30, **env_of(console, CONGSO_WEB_HOST="0.0.0.0", CONGSO_WEB_PORT=str(free_port())))
    assert r.returncode != 0
    message = r.stderr
    assert "tls_cert" in message and "tls_key" in message and "127.0.0.1" in message


def test_web_run_serves_https_with_the_office_ca_certificate(console, spawn, tmp_path):
    ca_dir, web_dir = tmp_path / "ca", tmp_path / "web-tls"
    ca_crt, _crt, _key, _made = office_ca.ensure(ca_dir, "ky-chau", ["localhost", "127.0.0.1"], run_as="root")
    web_crt, web_key, _made = office_ca.ensure_web(ca_dir, web_dir, ["localhost", "127.0.0.1"], group=None)
    port = free_port()
    proc = spawn(["web", "run"], env_of(console, CONGSO_WEB_HOST="127.0.0.1", CONGSO_WEB_PORT=str(port),
                                        CONGSO_WEB_TLS_CERT=str(web_crt), CONGSO_WEB_TLS_KEY=str(web_key)), name="web")
    verify = ssl.create_default_context(cafile=str(ca_crt))
    base = f"https://127.0.0.1:{port}"

    def healthy():
        if not proc.alive():
            raise AssertionError(f"congso web run ended:\n{proc.tail()}")
        try:
            return httpx.get(base + "/healthz", verify=verify, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, 30, "the console over HTTPS", proc)
    r = httpx.get(base + "/healthz", verify=verify)
    assert r.json()["ok"] is True and isinstance(r.json()["version"], str) and r.json()["version"]
    assert "max-age" in r.headers.get("strict-transport-security", "")
    # the certificate is the office CA's: a client trusting only the public CAs refuses it
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "/healthz", timeout=5)
    # plain HTTP on that port is no console
    try:
        answered = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code < 400
    except httpx.HTTPError:
        answered = False
    assert not answered

    with httpx.Client(base_url=base, verify=verify, follow_redirects=False) as c:
        form = c.get("/login")
        login_cookie = form.headers.get("set-cookie", "")
        assert LOGIN_CSRF_COOKIE in login_cookie and "secure" in login_cookie.lower()
        r = c.post("/login", data={"username": "vt", "password": PASSWORD, "csrf_token": csrf_in(form.text)})
        assert r.status_code == 303, r.text[:300]
        cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith(SESSION_COOKIE + "=")][0]
        attrs = [a.strip().lower() for a in cookie.split(";")]
        assert "secure" in attrs and "httponly" in attrs
        assert any(a in ("samesite=lax", "samesite=strict") for a in attrs)
        assert c.get("/users/audit").status_code == 403  # logged in (a clerk), refused by role, not sent to /login


@pytest.mark.parametrize("target, lands", [("/users/audit", "/users/audit"), ("//evil.example/x", "/"),
                                           ("https://evil.example/", "/"), ("/\\evil.example", "/"),
                                           ("javascript:alert(1)", "/")])
def test_login_goes_back_only_to_a_page_of_this_console(console, target, lands):
    c = console.client()
    form = c.get("/login", params={"next": target})
    r = c.post("/login", data={"username": "chanh-vp", "password": PASSWORD, "next": target,
                               "csrf_token": csrf_in(form.text)})
    assert r.status_code == 303 and r.headers["location"] == lands


def test_a_page_without_a_session_sends_to_login_and_back(console):
    c = console.client()
    r = c.get("/users/audit?q=NV001")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    form = c.get(r.headers["location"])
    assert 'name="next" value="/users/audit?q=NV001"' in form.text


def test_cli_user_add_at_a_terminal_asks_twice(console):
    """At a terminal the password is asked twice, not echoed, and a mismatch is asked again."""
    import os
    import pty
    import select
    import subprocess
    import sys

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONGSO_")}
    env.update(env_of(console))
    proc = subprocess.Popen([sys.executable, "-m", "congso", "web", "user", "add", "tty-user", "--role", "viewer"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    seen = b""

    def read_until(word: bytes, timeout: float = 30) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while word not in seen:
            left = deadline - time.monotonic()
            assert left > 0, seen
            ready, _, _ = select.select([master], [], [], left)
            if ready:
                try:
                    chunk = os.read(master, 1024)
                except OSError:
                    chunk = b""
                assert chunk, seen
                seen += chunk

    try:
        read_until(b"Password")
        os.write(master, b"mat-khau-tai-terminal\n")
        read_until(b"Repeat")
        os.write(master, b"khac-mat-khau-1234\n")
        first, seen = seen, b""
        read_until(b"Password")  # the two differ: asked again
        first += seen
        os.write(master, b"mat-khau-tai-terminal\n")
        read_until(b"Repeat")
        os.write(master, b"mat-khau-tai-terminal\n")
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        os.close(master)
    assert b"mat-khau-tai-terminal" not in first + seen and b"khac-mat-khau" not in first + seen  # never echoed
    assert try_login(console.client(), "tty-user", "mat-khau-tai-terminal").status_code == 303
