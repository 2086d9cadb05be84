"""What every console route uses: the database, rendering, forms, flash messages, the audit log.

A route is a thin shell: ``values = await form(request)``, one library
call, ``audit(request, ...)``, then ``done(request, url, "Đã lưu ...")`` (a
303 with a flash message: the browser's back and reload never post twice)
or ``render(request, "x.html", ...)``. A library error (``ValueError`` and
its kin: ``StaffError``, ``DossierError``, ...) is shown on the same form,
with the values the user typed kept.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import sqlite_utils
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from .. import __version__
from ..gateway import accounts
from ..gateway import audit as audit_mod
from ..vocab import text as text_mod
from ..vocab import vietnamese
from . import access

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
FLASH_COOKIE = "congso_flash"
PAGE_SIZE = 50


@dataclass
class Console:
    """What the app holds for its whole life: settings, where the database is, the clock."""

    settings: Any
    db_path: Path
    clock: Callable[[], datetime] | None = None
    secure_cookies: bool = False
    # Small shared caches (screenshots asked for on the dashboard, by node id).
    screenshots: dict = field(default_factory=dict)

    @property
    def tz(self) -> str:
        return self.settings.site.timezone

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(self.zone)

    def today(self) -> date:
        return self.now().date()


def open_db(path: Path) -> sqlite_utils.Database:
    """One connection for one request: WAL lets it read while the gateway writes.

    The console never migrates (``congso web run`` did at start) and waits
    at most 5 s for the write lock: a write of the console is one small
    transaction, so ingest is never held up for longer than one of them.
    """
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=5)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA cache_size=-1024")  # 1 MiB a connection: a page reads little, and memory is tight
    return sqlite_utils.Database(conn)


def console(request: Request) -> Console:
    return request.app.state.console


def db(request: Request) -> sqlite_utils.Database:
    """The request's database connection (opened by the guard, closed when the response is sent)."""
    return request.state.db


def session(request: Request):
    """The logged-in user's session (``accounts.Session``), or None on an API call with a token."""
    return getattr(request.state, "session", None)


def actor(request: Request) -> tuple[str, str]:
    """(who, via) for the audit log."""
    s = session(request)
    if s is not None:
        return s.name, "web"
    return f"token:{getattr(request.state, 'token_name', '?')}", "api"


def audit(request: Request, action: str, target: str | None = None, detail=None) -> None:
    who, via = actor(request)
    audit_mod.record(db(request), actor=who, via=via, action=action, target=target, detail=detail)


async def form(request: Request) -> dict[str, str]:
    """The posted form's text fields, NFC (files are left in ``request.form()``)."""
    data = await request.form()
    out = {}
    for key, value in data.multi_items():
        if isinstance(value, str):
            out[key] = text_mod.nfc(value)
    return out


async def upload(request: Request, name: str, limit: int) -> tuple[str, bytes] | None:
    """(file name, bytes) of an uploaded file field, or None if none was chosen."""
    data = await request.form()
    f = data.get(name)
    if f is None or isinstance(f, str) or not getattr(f, "filename", ""):
        return None
    content = await f.read(limit + 1)
    if len(content) > limit:
        raise ValueError(f"tệp {f.filename} lớn hơn {limit // (1024 * 1024)} MB")
    return text_mod.printable(f.filename)[:200], content


def flash_text(request: Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    return text_mod.printable(urllib.parse.unquote(raw))[:500] if raw else None


def done(request: Request, url: str, message: str | None = None) -> RedirectResponse:
    """After a change: 303 to ``url`` with a flash message shown once there."""
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(FLASH_COOKIE, urllib.parse.quote(message), max_age=60, httponly=True,
                            samesite="lax", secure=console(request).secure_cookies, path="/")
    return response


def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    s = session(request)
    context.setdefault("error", None)
    response = request.app.state.templates.TemplateResponse(request, template, {
        "session": s,
        "role": s.role if s else None,
        "can": lambda perm: s is not None and access.can(s.role, perm),
        "csrf_token": s.csrf_token if s else getattr(request.state, "login_csrf", ""),
        "flash": flash_text(request),
        "version": __version__,
        "office": console(request).settings.site.name,
        "now": console(request).now(),
        **context,
    }, status_code=status_code)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 100000))
    except ValueError:
        return 1


# -- Vietnamese dates and times for the templates -------------------------------------------
def _as_datetime(value, zone: ZoneInfo) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return dt.astimezone(zone) if dt.tzinfo else dt


def make_templates(zone: ZoneInfo) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env

    def dmy(value) -> str:
        if isinstance(value, date) and not isinstance(value, datetime):
            return vietnamese.short_date(value)
        if isinstance(value, str) and len(value) == 10:
            try:
                return vietnamese.short_date(date.fromisoformat(value))
            except ValueError:
                return value
        dt = _as_datetime(value, zone)
        return vietnamese.short_date(dt.date()) if dt else ""

    def hm(value) -> str:
        dt = _as_datetime(value, zone)
        return vietnamese.hhmm(dt) if dt else ""

    def dmy_hm(value) -> str:
        dt = _as_datetime(value, zone)
        return f"{vietnamese.hhmm(dt)} {vietnamese.short_date(dt.date())}" if dt else ""

    def long_date(value) -> str:
        d = value if isinstance(value, date) and not isinstance(value, datetime) else (_as_datetime(value, zone) or datetime.now(zone)).date()
        return vietnamese.long_date(d)

    env.filters.update(dmy=dmy, hm=hm, dmy_hm=dmy_hm, long_date=long_date, printable=text_mod.printable)
    env.globals["ROLE_VI"] = accounts.ROLE_VI
    return templates
