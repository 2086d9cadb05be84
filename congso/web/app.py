"""The console's ASGI app: ``create_app(settings)``.

The page modules are listed in ``PARTS``, each with a ``router``; nothing is
registered by importing it. Every request goes through, in order:

1. ``BodyLimit``: a body over the limit is refused with 413 before it is
   read (64 KiB on ``/api/``, ``UPLOAD_LIMIT`` for the pages' file imports);
2. ``SecurityHeaders``: CSP without inline script, no framing, ``no-store``;
3. ``guard`` (a dependency of every route): opens the request's database
   connection, finds the matched route's rule (``access.py``), checks the
   session or the bearer token, the role or the scope, and the CSRF token of
   a state-changing request. A route with no rule answers 500.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..gateway import accounts
from . import access, page

log = logging.getLogger(__name__)

SESSION_COOKIE = "congso_session"
LOGIN_CSRF_COOKIE = "congso_login_csrf"
API_BODY_LIMIT = 64 * 1024
UPLOAD_LIMIT = 21 * 1024 * 1024  # imports take files up to 20 MiB (gateway/imports.py)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Threads that run the (sync) routes. An office has a handful of users; each
# thread costs memory (its own malloc arena, its own connection), and the
# gateway beside us needs the CPU more than a 40th request in flight does.
ROUTE_THREADS = 4

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _parts():
    # The page modules, in menu order. A new page is a module and one entry here.
    from .pages import (announcements, api, auth, calendar, dashboard, desks, devices, dossiers, leave,
                        media, reports, staff, users)
    return [auth, dashboard, staff, leave, calendar, dossiers, media, announcements, desks, reports, devices, users, api]


class NeedLogin(Exception):
    pass


class BodyLimit:
    """413 for a body over the limit: by Content-Length at once, else while it streams."""

    def __init__(self, app, api_limit: int = API_BODY_LIMIT, page_limit: int = UPLOAD_LIMIT,
                 media_limit: int = UPLOAD_LIMIT):
        # media_limit: the announcements' forms take a video slide ([media] max_video_mb).
        self.app, self.api_limit, self.page_limit, self.media_limit = app, api_limit, page_limit, media_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.api_limit if scope["path"].startswith("/api/") else (
            self.media_limit if scope["path"].startswith("/announcements/") else self.page_limit)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                too_big = True
            if too_big:
                return await _too_large(scope, send, limit)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _too_large(scope, send, limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope, send, limit: int) -> None:
    response = JSONResponse({"error": f"the request body is over {limit} bytes", "field": None}, status_code=413)
    await response(scope, None, send)


class SecurityHeaders:
    def __init__(self, app, tls: bool):
        self.app, self.tls = app, tls

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
                         (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                         (b"cross-origin-opener-policy", b"same-origin")]
                if not static and b"cache-control" not in names:
                    # Pages and reports hold personal data: never kept by the browser or a proxy.
                    extra.append((b"cache-control", b"no-store"))
                if self.tls:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers + [h for h in extra if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _csrf_ok(request: Request, expected: str) -> bool:
    given = request.headers.get("x-csrf-token")
    if given is None and (request.headers.get("content-type") or "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        data = await request.form()
        value = data.get("csrf_token")
        given = value if isinstance(value, str) else None
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


async def guard(request: Request):
    """Every route's access check (see the module docstring)."""
    c = page.console(request)
    route = request.scope.get("route")
    rule = access.rule_of(getattr(route, "endpoint", None))
    if rule is None:
        log.error("route %s has no access rule: refused", request.url.path)
        raise HTTPException(500, "this route has no access rule")
    request.state.db = page.open_db(c.db_path)
    try:
        await _check(request, rule, c)
        yield
    finally:
        request.state.db.conn.close()


async def _check(request: Request, rule: access.Rule, c: page.Console) -> None:
    db = request.state.db
    request.state.session = None
    if rule.public:
        return
    auth = request.headers.get("authorization")
    if _is_api(request) and auth is not None:
        kind, _, token = auth.partition(" ")
        found = accounts.token_scopes(db, token.strip()) if kind.lower() == "bearer" else None
        if found is None:
            raise HTTPException(401, "no valid bearer token (Authorization: Bearer <token>)")
        request.state.token_name, scopes = found
        if rule.scope is None or rule.scope not in scopes:
            raise HTTPException(403, f"this token lacks the scope {rule.scope or '(session only)'}")
        return
    s = accounts.session(db, request.cookies.get(SESSION_COOKIE), idle_s=c.settings.web.idle_minutes * 60)
    if s is None:
        if _is_api(request):
            raise HTTPException(401, "log in, or send Authorization: Bearer <token>")
        raise NeedLogin()
    request.state.session = s
    if request.method in UNSAFE and not await _csrf_ok(request, s.csrf_token):
        raise HTTPException(403, "the form is out of date or came from another site (CSRF token missing or wrong): reload the page and try again")
    if s.role not in rule.roles():
        raise HTTPException(403, f"the role {s.role} may not do this")


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {403: "Không có quyền", 404: "Không tìm thấy trang", 405: "Không thực hiện được",
              413: "Tệp quá lớn", 500: "Lỗi hệ thống"}
    if not hasattr(request.state, "session"):
        request.state.session = None
    try:
        return page.render(request, "error.html", status_code=status, title=titles.get(status, "Lỗi"), message=message,
                           status=status)
    except Exception:  # the error page must never fail on its own
        log.exception("error page failed")
        return HTMLResponse(f"<h1>{status}</h1>", status_code=status)


_VI = {403: "Tài khoản của bạn không có quyền làm việc này.", 404: "Trang này không có.",
       405: "Trang này không nhận cách gửi đó."}


def create_app(settings, *, db_path: str | Path | None = None, clock=None) -> FastAPI:
    """The console on the gateway's database (``[data] dir``/gateway.db unless ``db_path``)."""
    from ..gateway.service import db_path as gateway_db_path

    tls = bool(settings.web.tls_cert and settings.web.tls_key)
    c = page.Console(settings=settings, db_path=Path(db_path) if db_path else gateway_db_path(settings),
                     clock=clock, secure_cookies=tls)
    @contextlib.asynccontextmanager
    async def lifespan(app):
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = ROUTE_THREADS
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="congso office console API", version=__version__,
        description="The integration API of the congso office console (docs/console.md, ../shared/OFFICE.md). "
                    "Authenticate with `Authorization: Bearer <token>` (`congso web token create`).",
        dependencies=[Depends(guard)], docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json",
    )
    app.state.console = c
    app.state.templates = page.make_templates(c.zone)
    app.mount("/static", StaticFiles(directory=str(page.STATIC_DIR)), name="static")
    for part in _parts():  # the schema documents the integration API, not the pages
        app.include_router(part.router, include_in_schema=part.router.prefix.startswith("/api/"))

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, exc: NeedLogin):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        from urllib.parse import quote
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if _is_api(request) or request.url.path == "/healthz":
            headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
            return JSONResponse({"error": str(exc.detail), "field": getattr(exc, "field", None)},
                                status_code=exc.status_code, headers=headers)
        message = _VI.get(exc.status_code) if exc.status_code in (403, 404, 405) and "CSRF" not in str(exc.detail) else None
        if "CSRF" in str(exc.detail):
            message = "Biểu mẫu đã cũ hoặc không gửi từ trang này. Hãy tải lại trang rồi làm lại."
        return _error_page(request, exc.status_code, message or str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path", "form")]
        field_name = loc[0] if loc else None
        message = f"{field_name or 'request'}: {first.get('msg', 'invalid')}"
        if _is_api(request):
            return JSONResponse({"error": message, "field": field_name}, status_code=422)
        return _error_page(request, 422, f"Dữ liệu gửi lên không hợp lệ ({message}).")

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("console: %s %s failed", request.method, request.url.path)
        if _is_api(request):
            return JSONResponse({"error": "internal error; the console's log has the details", "field": None}, status_code=500)
        return _error_page(request, 500, "Có lỗi trong hệ thống; bộ phận kỹ thuật xem nhật ký của congso-web.")

    app.add_middleware(SecurityHeaders, tls=tls)
    app.add_middleware(BodyLimit, media_limit=max(UPLOAD_LIMIT, (settings.media.max_video_mb + 1) * 1024 * 1024))
    return app

