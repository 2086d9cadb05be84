"""The console under Starlette's TestClient: a real app on a real gateway database, no server needed.

    console = Console(tmp_path)                  # database, settings, app
    console.user("vt", "clerk")                   # a user with PASSWORD
    client = console.login("vt")                  # a logged-in TestClient
    client.post("/calendar", data={..., "csrf_token": client.csrf})
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from congso.gateway import accounts, staff
from congso.gateway.db import open_db
from congso.protocol import settings as settings_mod
from congso.web.app import create_app

PASSWORD = "mat-khau-thu-nghiem-10"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_in(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no csrf_token in the page"
    return m.group(1)


class Console:
    def __init__(self, tmp_path: Path, clock=None, **env: str):
        self.data_dir = tmp_path / "data"
        environ = {"CONGSO_DATA_DIR": str(self.data_dir), "CONGSO_SITE_ID": "ky-chau", **env}
        self.settings = settings_mod.load(environ=environ)
        self.db_path = self.data_dir / "gateway.sqlite"
        self.db = open_db(self.db_path)
        self.app = create_app(self.settings, db_path=self.db_path, clock=clock)

    def staff(self, staff_id: str, name: str, department: str | None = None) -> None:
        staff.add(self.db, staff_id, name, department)

    def user(self, name: str, role: str, staff_id: str | None = None, desks=()) -> None:
        if role == "officer" and staff_id is None:
            staff_id = f"NV-{name}"
            if staff.get(self.db, staff_id) is None:
                staff.add(self.db, staff_id, f"Cán bộ {name}")
        accounts.add_user(self.db, name, role, PASSWORD, staff_id)
        if desks:
            accounts.set_desks(self.db, name, list(desks))

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://127.0.0.1:8080", follow_redirects=False)

    def login(self, name: str, password: str = PASSWORD) -> TestClient:
        """A client logged in as ``name``; ``client.csrf`` is its session's CSRF token."""
        c = self.client()
        form = c.get("/login")
        r = c.post("/login", data={"username": name, "password": password, "csrf_token": csrf_in(form.text)})
        assert r.status_code == 303, (r.status_code, r.text[:500])
        home = c.get("/")  # every page carries the session's token (the logout form)
        c.csrf = csrf_in(home.text)
        return c

    def as_role(self, role: str) -> TestClient:
        name = f"u-{role}"
        if accounts.get_user(self.db, name) is None:
            self.user(name, role)
        return self.login(name)
