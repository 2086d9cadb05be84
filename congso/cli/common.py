"""What every area's commands share: the gateway database, the office clock, clean errors.

Printing (tables, --csv, --json) is in ``output.py``.
"""

from __future__ import annotations

import click


def gateway_db(settings, readonly: bool = False):
    """The gateway database of this machine (``<data dir>/gateway.sqlite``).

    Writing commands run beside the running gateway (WAL); the gateway
    notices their commits and re-publishes what changed. Reading commands
    pass ``readonly=True``: they never create a database, so a wrong
    ``[data] dir`` is an error naming the path instead of an empty office.
    """
    import sqlite3

    from ..gateway.db import open_db, open_readonly
    from ..gateway.service import db_path
    from ..protocol import dbcheck

    from ..gateway import privacy

    privacy.use_settings(settings)  # a template in a command is sealed with the gateway's own key
    path = db_path(settings)
    # A damaged database: the advice (restore a backup, or move it aside), not a traceback.
    problems = dbcheck.check(path, quick=True) if path.is_file() and path.stat().st_size else []
    if problems:
        raise click.ClickException(dbcheck.gateway_advice(path, problems))
    try:
        return open_readonly(path) if readonly else open_db(path)
    except FileNotFoundError as e:
        raise click.ClickException(str(e)) from None
    except sqlite3.DatabaseError as e:
        if dbcheck.is_damage(e):
            raise click.ClickException(dbcheck.gateway_advice(path, str(e))) from None
        raise


def office_now(settings):
    """Now, in the office's time zone."""
    from ..protocol import clock

    return clock.now(settings.site.timezone)


def guard(fn, *args, **kw):
    """Run a library call; its ValueError (StaffError, RulesError, ReportError, ...) becomes a clean CLI error."""
    try:
        return fn(*args, **kw)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
