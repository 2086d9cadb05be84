"""``congso web``: the office console (run), its users and its API tokens."""

from __future__ import annotations

import ipaddress
import os
import sys

import click

from .common import gateway_db, guard
from .output import output_options, show

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
NICE = 10


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(settings) -> None:
    """Refuse to serve plain HTTP beyond loopback: passwords would cross the LAN in clear."""
    web = settings.web
    if bool(web.tls_cert) != bool(web.tls_key):
        raise click.UsageError("set both [web] tls_cert and [web] tls_key (CONGSO_WEB_TLS_CERT, CONGSO_WEB_TLS_KEY), or neither")
    if not web.tls_cert and not is_loopback(web.host):
        raise click.UsageError(
            f"[web] host = {web.host} without TLS: the console would send passwords in clear over the LAN. "
            "Set [web] tls_cert and [web] tls_key to the office CA's certificate for this gateway "
            "(`congso install gateway` makes /etc/congso/tls/web.crt and web.key), "
            "or listen on 127.0.0.1 only (CONGSO_WEB_HOST=127.0.0.1)")
    for key in ("tls_cert", "tls_key"):
        path = getattr(web, key)
        if path:
            try:
                open(path, "rb").close()
            except OSError as e:
                raise click.UsageError(f"[web] {key} = {path}: cannot read it ({e.strerror})") from None


@click.group()
def web() -> None:
    """The office console: a web app for the clerk, the officers and the head of office.

    \b
    No user exists until you add one; there is no default password.
    Examples:
      congso web user add chanh-vp --role admin          asks for the password twice
      echo 'mat-khau-dai-10' | congso web user add vt --role clerk
      congso web user add ms-lan --role officer --staff NV007 --desk 1
      congso web token create motcua --scope dossiers:write,dossiers:read
      congso web run                                     http://127.0.0.1:8080
    """


@web.command("run")
@click.pass_obj
def run(settings) -> None:
    """Serve the console and the API ([web] host, port, tls_cert, tls_key).

    \b
    A separate process from `congso gateway run`, on the same database:
    a fault of the console never stops the gateway storing events.
    Beyond 127.0.0.1 it needs TLS (the installer's office CA certificate).

    \b
    Example:
      congso web run
      CONGSO_WEB_HOST=0.0.0.0 CONGSO_WEB_TLS_CERT=/etc/congso/tls/web.crt CONGSO_WEB_TLS_KEY=/etc/congso/tls/web.key congso web run
    """
    import uvicorn

    from ..web.app import create_app

    check_listen(settings)
    gateway_db(settings).conn.close()  # creates and migrates it, as the gateway would
    _lean_process()
    app = create_app(settings)
    import gc

    # What start-up made lives as long as the process: out of the collector's
    # way, so a collection during a request walks only that request's objects.
    gc.collect()
    gc.freeze()
    tls = dict(ssl_certfile=settings.web.tls_cert, ssl_keyfile=settings.web.tls_key) if settings.web.tls_cert else {}
    scheme = "https" if tls else "http"
    click.echo(f"congso web: serving {scheme}://{settings.web.host}:{settings.web.port}/ on {app.state.console.db_path}", err=True)
    uvicorn.run(app, host=settings.web.host, port=settings.web.port, log_level=settings.log.level.lower(),
                server_header=False, proxy_headers=False, access_log=False, timeout_graceful_shutdown=5, **tls)


def _lean_process() -> None:
    """Two malloc arenas instead of 8 per core: the route threads then share
    memory instead of each keeping its own (the console's RSS budget is 90 MB
    on a Pi beside the gateway). Must run before the threads start.

    And a lower CPU priority than the gateway (nice 10, as the systemd unit's
    Nice=10): when both want the CPU, storing and acking events goes first and
    a page waits a little (OFFICE.md: the console never holds up ingest).
    """
    import ctypes
    import ctypes.util

    try:
        if os.nice(0) < NICE:
            os.nice(NICE - os.nice(0))
    except OSError:
        pass

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX (glibc)
        # A fixed mmap threshold: a big block (argon2's 7 MiB for a login)
        # is always its own mapping and goes back to the system when freed,
        # instead of glibc raising the threshold and keeping it in the heap.
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


# -- users ---------------------------------------------------------------------------------
def _read_password(prompt_twice: bool = True) -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return click.prompt("Password (at least 10 characters)", hide_input=True, confirmation_prompt=prompt_twice)


@web.group()
def user() -> None:
    """Console users: admin, clerk, officer, viewer.

    \b
    admin    everything, including users and tokens
    clerk    staff, cards, fingers, leave, calendar, notices, dossiers, reports
    officer  dossiers; desk sessions at their desks; their own ratings
    viewer   read only: the dashboard and the reports
    Example:
      congso web user list
    """


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["admin", "clerk", "officer", "viewer"]),
              help="What the user may do (see `congso web user --help`).")
@click.option("--staff", "staff_id", help="The staff member this user is (needed for an officer: their votes).")
@click.option("--desk", "desks", multiple=True, help="A desk this officer may open sessions at (repeatable).")
@click.pass_obj
def user_add(settings, name, role, staff_id, desks) -> None:
    """Add a user; the password comes from standard input (one line) or is asked twice.

    \b
    Example:
      congso web user add vt --role clerk
      congso web user add ms-lan --role officer --staff NV007 --desk 1 --desk 2
    """
    from ..gateway import accounts, audit

    password = _read_password()
    db = gateway_db(settings)
    row = guard(accounts.add_user, db, name, role, password, staff_id)
    if desks:
        guard(accounts.set_desks, db, row["name"], list(desks))
    audit.record_cli(db, "user.add", row["name"], {"role": role, "staff_id": staff_id, "desks": list(desks)})
    click.echo(f"user {row['name']} added, role {role}" + (f", staff {staff_id}" if staff_id else ""))
    if role == "officer" and not staff_id:
        click.echo(f"warning: officer {row['name']} has no staff id: they can keep dossiers but open no desk session "
                   f"and see no ratings until `congso web user role {row['name']} --role officer --staff NV...`", err=True)


@user.command("disable")
@click.argument("name")
@click.pass_obj
def user_disable(settings, name) -> None:
    """Disable a user: their sessions end at once, they cannot log in.

    \b
    Example:
      congso web user disable vt
    """
    from ..gateway import accounts, audit

    db = gateway_db(settings)
    guard(accounts.set_active, db, name, False)
    audit.record_cli(db, "user.disable", name)
    click.echo(f"user {name} disabled; their sessions are ended")


@user.command("enable")
@click.argument("name")
@click.pass_obj
def user_enable(settings, name) -> None:
    """Let a disabled user log in again.

    \b
    Example:
      congso web user enable vt
    """
    from ..gateway import accounts, audit

    db = gateway_db(settings)
    guard(accounts.set_active, db, name, True)
    audit.record_cli(db, "user.enable", name)
    click.echo(f"user {name} enabled")


@user.command("password")
@click.argument("name")
@click.pass_obj
def user_password(settings, name) -> None:
    """Set a new password (from standard input or asked twice); ends the user's sessions.

    \b
    Example:
      congso web user password vt
    """
    from ..gateway import accounts, audit

    password = _read_password()
    db = gateway_db(settings)
    guard(accounts.set_password, db, name, password)
    audit.record_cli(db, "user.password", name)
    click.echo(f"password of {name} changed; their sessions are ended")


@user.command("role")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["admin", "clerk", "officer", "viewer"]),
              help="What the user may do (see `congso web user --help`).")
@click.option("--staff", "staff_id", help="The staff member this user is.")
@click.pass_obj
def user_role(settings, name, role, staff_id) -> None:
    """Change a user's role; they log in again under it.

    \b
    Example:
      congso web user role vt --role viewer
    """
    from ..gateway import accounts, audit

    db = gateway_db(settings)
    guard(accounts.set_role, db, name, role, staff_id)
    audit.record_cli(db, "user.role", name, {"role": role, "staff_id": staff_id})
    click.echo(f"user {name} is now {role}")


@user.command("desks")
@click.argument("name")
@click.argument("desks", nargs=-1)
@click.pass_obj
def user_desks(settings, name, desks) -> None:
    """Set the desks an officer may open sessions at (none: clear).

    \b
    Example:
      congso web user desks ms-lan 1 2
    """
    from ..gateway import accounts, audit

    db = gateway_db(settings)
    kept = guard(accounts.set_desks, db, name, list(desks))
    audit.record_cli(db, "user.desks", name, {"desks": kept})
    click.echo(f"{name}: desks {', '.join(kept) or '(none)'}")


@user.command("list")
@output_options
@click.pass_obj
def user_list(settings, fmt) -> None:
    """The console's users.

    \b
    Example:
      congso web user list --csv
    """
    from ..gateway import accounts

    rows = accounts.list_users(gateway_db(settings, readonly=True))
    show(fmt, "Console users", ["name", "role", "staff_id", "desks", "active", "last_login_at"],
         [[u["name"], u["role"], u["staff_id"], ",".join(u["desks"]), bool(u["active"]), u["last_login_at"]] for u in rows])


# -- tokens --------------------------------------------------------------------------------
@web.group()
def token() -> None:
    """Bearer tokens for one-stop systems and scripts (the integration API).

    \b
    Scopes: dossiers:read, dossiers:write, calendar:write, reports:read.
    Example:
      congso web token create motcua --scope dossiers:read,dossiers:write
      curl -H "Authorization: Bearer cs_..." http://127.0.0.1:8080/api/v1/dossiers
    """


@token.command("create")
@click.argument("name")
@click.option("--scope", "scopes", required=True, help="Comma-separated scopes.")
@click.pass_obj
def token_create(settings, name, scopes) -> None:
    """Create a token and print it once (only its hash is kept).

    \b
    Example:
      congso web token create motcua --scope dossiers:read,dossiers:write
    """
    from ..gateway import accounts, audit

    db = gateway_db(settings)
    text = guard(accounts.create_token, db, name, scopes)
    audit.record_cli(db, "token.create", name, {"scopes": scopes})
    click.echo(text)
    click.echo(f"token {name} created; copy it now, it is not shown again", err=True)


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(settings, name) -> None:
    """Revoke a token: every request with it gets 401 from now on.

    \b
    Example:
      congso web token revoke motcua
    """
    from ..gateway import accounts, audit

    db = gateway_db(settings)
    guard(accounts.revoke_token, db, name)
    audit.record_cli(db, "token.revoke", name)
    click.echo(f"token {name} revoked")


@token.command("list")
@output_options
@click.pass_obj
def token_list(settings, fmt) -> None:
    """The API tokens (names and scopes; the tokens themselves are not kept).

    \b
    Example:
      congso web token list
    """
    from ..gateway import accounts

    rows = accounts.list_tokens(gateway_db(settings, readonly=True))
    show(fmt, "API tokens", ["name", "scopes", "created_at", "last_used_at", "revoked_at"],
         [[r["name"], r["scopes"], r["created_at"], r["last_used_at"], r["revoked_at"]] for r in rows])


@web.command("audit")
@click.option("--search", "q", help="Text in the action, target, detail or actor.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000), help="Show at most this many rows.")
@output_options
@click.pass_obj
def audit_list(settings, q, limit, fmt) -> None:
    """Who changed what and when (console, API and CLI), newest first.

    \b
    Example:
      congso web audit --search NV007
    """
    from ..gateway import audit

    rows, total = audit.search(gateway_db(settings, readonly=True), q, limit=limit)
    show(fmt, f"Audit log ({len(rows)} of {total})", ["at", "actor", "via", "action", "target", "detail"],
         [[r["at"], r["actor"], r["via"], r["action"], r["target"], r["detail"]] for r in rows])


def register(main, report) -> None:
    main.add_command(web)
