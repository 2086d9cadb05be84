"""Logging in and out, and the health check (``../shared/OFFICE.md``: Users and sessions)."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

from ... import __version__
from ...gateway import accounts
from .. import access, page
from ..app import LOGIN_CSRF_COOKIE, SESSION_COOKIE

router = APIRouter()


def _safe_next(target: str | None) -> str:
    # Only a path on this console: never an open redirect to another site.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def _login_page(request: Request, status_code: int = 200, error: str | None = None, username: str = "",
                next_url: str = "/"):
    token = request.cookies.get(LOGIN_CSRF_COOKIE)
    fresh = not token or len(token) > 100
    if fresh:
        token = secrets.token_urlsafe(32)
    request.state.login_csrf = token
    response = page.render(request, "login.html", status_code=status_code, error=error, username=username,
                           next_url=_safe_next(next_url))
    if fresh:
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=page.console(request).secure_cookies, path="/")
    return response


@router.get("/healthz")
@access.public
def healthz():
    return JSONResponse({"ok": True, "version": __version__})


@router.get("/login")
@access.public
def login_form(request: Request, next: str = "/"):
    if page.session(request) is None:
        s = accounts.session(page.db(request), request.cookies.get(SESSION_COOKIE),
                             idle_s=page.console(request).settings.web.idle_minutes * 60)
        if s is not None:
            return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, next_url=next)


@router.post("/login")
@access.public
async def login(request: Request):
    values = await page.form(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    given = values.get("csrf_token") or ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return _login_page(request, 403, "Biểu mẫu đăng nhập đã cũ. Hãy nhập lại tên và mật khẩu.",
                           values.get("username", ""), values.get("next", "/"))
    username = (values.get("username") or "").strip()
    password = values.get("password") or ""
    client = request.client.host if request.client else "?"
    from starlette.concurrency import run_in_threadpool
    # argon2 takes ~50 ms of CPU: off the event loop, so other pages keep answering.
    result = await run_in_threadpool(accounts.login, page.db(request), username, password, client)
    if result.user is None:
        if result.locked_for_s > 0:
            seconds = int(result.locked_for_s + 0.999)
            return _login_page(request, 429, f"Đăng nhập sai quá {accounts.LOCK_AFTER} lần. Tạm khoá, hãy thử lại sau {seconds} giây.",
                               username, values.get("next", "/"))
        message = "Tên đăng nhập hoặc mật khẩu không đúng."
        if result.now_locked:
            message += f" Đã sai {accounts.LOCK_AFTER} lần liền: tạm khoá {int(accounts.LOCK_S)} giây."
        return _login_page(request, 401, message, username, values.get("next", "/"))
    cookie = accounts.new_session(page.db(request), result.user["name"], client)
    response = RedirectResponse(_safe_next(values.get("next")), status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="lax",
                        secure=page.console(request).secure_cookies, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
@access.requires("dashboard.view")
def logout(request: Request):
    accounts.end_session(page.db(request), request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
