"""Every role against every route of the console (``../shared/OFFICE.md``, Users and sessions).

The routes are read from the app itself (``app.routes``), so a page another
part adds later is checked without anyone listing it here. For each route
and each role, logged in, with the right CSRF token:

- a role without the rule's permission gets 403 and the office's data is
  unchanged (a dump of every table but the ones logging in touches);
- a role with it never gets 403 (unless the rule is ``narrowed``: the route
  refuses more by itself) and never a 500 (a crash on a dummy value is a bug).

Without a session every page answers 303 to /login and every /api/ route 401;
a route without a rule answers 500 (fail closed).
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from fastapi import Request
from fastapi.routing import APIRoute

from fastapi.testclient import TestClient

from congso.gateway import accounts
from congso.web import access
from congso.web.app import SESSION_COOKIE, create_app
from web_helpers import Console, csrf_in, PASSWORD

ROLES = ("admin", "clerk", "officer", "viewer")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Logging in writes these (and audit_log is allowed to grow); everything else is office data.
NOT_OFFICE_DATA = {"web_sessions", "web_login_failures", "audit_log"}
MIN_ROUTES = 40  # the console has at least this many (an app with its pages missing must fail)
PARAM_RE = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
DUMMY = "1"


def dump(db_path) -> dict:
    conn = sqlite3.connect(str(db_path))
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"').fetchall()))
                for t in tables if t not in NOT_OFFICE_DATA}
    finally:
        conn.close()


def changed(before: dict, after: dict) -> list[str]:
    return sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))


def walk(routes, prefix: str = ""):
    """The APIRoutes of ``app.routes``, into included routers (FastAPI >= 0.16x keeps them nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):
            context = getattr(route, "include_context", None)
            yield from walk(route.original_router.routes, prefix + (getattr(context, "prefix", "") or ""))


def api_routes(app) -> list[tuple[str, str, APIRoute]]:
    """(method, path with dummy parameters, route) of every route, HEAD left out."""
    out = []
    for full_path, route in walk(app.routes):
        path = PARAM_RE.sub(DUMMY, full_path)
        for method in sorted(route.methods - {"HEAD"}):
            out.append((method, path, route))
    return out


def client_of(console: Console) -> TestClient:
    """Like ``console.client()``, but a crash is a 500 answer to look at, not an exception here."""
    return TestClient(console.app, base_url="http://127.0.0.1:8080", follow_redirects=False,
                      raise_server_exceptions=False)


def call(client, method: str, path: str, csrf: str | None):
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    if method in UNSAFE:
        if path.startswith("/api/"):
            return client.request(method, path, json={}, headers=headers)
        return client.request(method, path, data={"csrf_token": csrf} if csrf else {}, headers=headers)
    return client.request(method, path, headers=headers)


class Logged:
    """A logged-in client per role, logged in again when a route ended its session (logout)."""

    def __init__(self, console: Console):
        self.console, self.clients = console, {}

    def get(self, role: str):
        c = self.clients.get(role)
        live = c is not None and accounts.session(self.console.db, c.cookies.get(SESSION_COOKIE), idle_s=3600) is not None
        if not live:
            c = client_of(self.console)
            form = c.get("/login")
            r = c.post("/login", data={"username": f"u-{role}", "password": PASSWORD, "csrf_token": csrf_in(form.text)})
            assert r.status_code == 303, (role, r.status_code)
            row = self.console.db.execute(
                "SELECT csrf_token FROM web_sessions WHERE user = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
                [f"u-{role}"]).fetchone()
            c.csrf = row[0]
            self.clients[role] = c
        return c


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """Run every (role, method, path) once; the tests below read the results."""
    console = Console(tmp_path_factory.mktemp("access"))
    console.staff("NV001", "Nguyễn Thị Thu Hà")
    for role in ROLES:
        console.user(f"u-{role}", role, desks=("1",) if role == "officer" else ())
    logged = Logged(console)
    routes = api_routes(console.app)
    results, unaudited = [], []
    for method, path, route in routes:
        rule = access.rule_of(route.endpoint)
        if rule is None or rule.public:
            results.append((method, path, route, rule, None, None, []))
            continue
        for role in ROLES:
            client = logged.get(role)
            before, audited = dump(console.db_path), audit_rows(console)
            r = call(client, method, path, client.csrf)
            after = dump(console.db_path)
            tables = changed(before, after)
            if tables and audit_rows(console) == audited:
                unaudited.append(f"{role}: {method} {path} changed {tables} without an audit row")
            results.append((method, path, route, rule, role, r.status_code, tables))
    matrix_unaudited.extend(unaudited)
    return console, routes, results


matrix_unaudited: list[str] = []


def audit_rows(console: Console) -> int:
    return console.db.execute("SELECT count(*) FROM audit_log").fetchone()[0]


def test_the_console_has_its_routes_and_each_has_a_rule(matrix):
    _console, routes, _ = matrix
    assert len(routes) >= MIN_ROUTES, f"only {len(routes)} routes: are the page modules in app._parts()?"
    paths = {p for _m, p, _r in routes}
    for must in ("/login", "/logout", "/healthz", "/users", "/users/audit"):
        assert must in paths
    no_rule = [f"{m} {p}" for m, p, r in routes if access.rule_of(r.endpoint) is None]
    assert not no_rule, f"routes without an access rule (they answer 500): {no_rule}"


def test_a_role_without_the_permission_gets_403_and_nothing_changes(matrix):
    _c, _routes, results = matrix
    bad = []
    for method, path, _route, rule, role, status, tables in results:
        if role is None or role in rule.roles():
            continue
        if status != 403 or tables:
            bad.append(f"{role}: {method} {path} -> {status}, changed {tables}")
    assert not bad, "\n".join(bad)


def test_a_role_with_the_permission_is_never_refused(matrix):
    _c, _routes, results = matrix
    bad = [f"{role}: {method} {path} -> 403" for method, path, _r, rule, role, status, _t in results
           if role is not None and role in rule.roles() and not rule.narrowed and status == 403]
    assert not bad, "\n".join(bad)


def test_no_route_crashes_on_a_dummy_value(matrix):
    _c, _routes, results = matrix
    bad = [f"{role}: {method} {path} -> {status}" for method, path, _r, rule, role, status, _t in results
           if role is not None and status is not None and status >= 500]
    assert not bad, "\n".join(bad)


def test_every_change_a_route_makes_writes_an_audit_row(matrix):
    assert not matrix_unaudited, "\n".join(matrix_unaudited)


def test_the_matrix_covers_every_role_on_every_guarded_route(matrix):
    _c, routes, results = matrix
    guarded = {(m, p) for m, p, r in routes if access.rule_of(r.endpoint) and not access.rule_of(r.endpoint).public}
    seen = {}
    for method, path, _r, _rule, role, _s, _t in results:
        if role:
            seen.setdefault((method, path), set()).add(role)
    assert guarded and all(seen.get(k) == set(ROLES) for k in guarded)
    # and the matrix is not trivially all 403 (a broken login would make the "refused" test pass)
    assert any(s == 200 for *_x, role, s, _t in results if role == "admin")


def test_without_a_session_pages_go_to_login_and_the_api_answers_401(matrix):
    console, routes, _ = matrix
    anon = client_of(console)
    bad = []
    for method, path, route in routes:
        rule = access.rule_of(route.endpoint)
        if rule is None or rule.public:
            continue
        before = dump(console.db_path)
        r = call(anon, method, path, None)
        if path.startswith("/api/"):
            ok = r.status_code == 401 and r.json().get("error")
        else:
            ok = r.status_code == 303 and r.headers["location"].startswith("/login")
        if not ok:
            bad.append(f"{method} {path} -> {r.status_code} {r.headers.get('location')}")
        if changed(before, dump(console.db_path)):
            bad.append(f"{method} {path} changed data without a session")
    assert not bad, "\n".join(bad)


def test_a_forged_session_cookie_is_no_session(matrix):
    console, routes, _ = matrix
    c = console.client()
    c.cookies.set(SESSION_COOKIE, "not-a-session")
    assert c.get("/users").status_code == 303
    assert c.get("/api/v1/dossiers").status_code == 401


def test_a_route_without_a_rule_answers_500(tmp_path):
    console = Console(tmp_path)
    console.user("root1", "admin")
    app = create_app(console.settings, db_path=console.db_path)
    reached = []

    def forgotten(request: Request):
        reached.append(1)
        return {"secret": True}

    app.add_api_route("/forgotten", forgotten, methods=["GET", "POST"])
    app.add_api_route("/api/v1/forgotten", forgotten, methods=["GET"])
    console.app = app
    client = client_of(console)
    form = client.get("/login")
    assert client.post("/login", data={"username": "root1", "password": PASSWORD,
                                       "csrf_token": csrf_in(form.text)}).status_code == 303
    for method, path in (("GET", "/forgotten"), ("POST", "/forgotten"), ("GET", "/api/v1/forgotten")):
        r = client.request(method, path)
        assert r.status_code == 500, (method, path, r.status_code)
        assert "secret" not in r.text
        r = client_of(console).request(method, path)  # nor without a session
        assert r.status_code == 500
    assert reached == []


def test_every_api_route_against_a_token_of_each_scope(matrix):
    """A token without the route's scope gets 403 and changes nothing; with it, never 403 (nor 401)."""
    console, routes, _ = matrix
    tokens = {scope: accounts.create_token(console.db, f"t-{scope.replace(':', '-')}", scope)
              for scope in accounts.SCOPES}
    client = client_of(console)
    for token in tokens.values():  # a token's first use of the day records it (api_tokens.last_used_at): done here
        assert accounts.token_scopes(console.db, token)
    api = [(m, p, r) for m, p, r in routes if p.startswith("/api/") and access.rule_of(r.endpoint)]
    assert api
    bad = []
    for method, path, route in api:
        rule = access.rule_of(route.endpoint)
        for scope, token in tokens.items():
            before = dump(console.db_path)
            headers = {"Authorization": f"Bearer {token}"}
            r = (client.request(method, path, json={}, headers=headers) if method in UNSAFE
                 else client.request(method, path, headers=headers))
            allowed = rule.scope == scope
            if not allowed and (r.status_code != 403 or changed(before, dump(console.db_path))):
                bad.append(f"{scope}: {method} {path} -> {r.status_code}")
            if allowed and not rule.narrowed and r.status_code in (401, 403):
                bad.append(f"{scope}: {method} {path} -> {r.status_code} (has the scope)")
            if r.status_code >= 500:
                bad.append(f"{scope}: {method} {path} -> {r.status_code}")
    assert not bad, "\n".join(bad)
