"""``state/presence``: today's attendance in figures (an addition to the contract).

How many active staff there are, how many have checked in today, unknown
cards tapped, events, and events stamped by an unsynchronised clock. The TV
can show it and the province roll-up reads it from every office, with no
access to anyone's name.
"""

from __future__ import annotations

import sqlite_utils

from . import state


def build(db: sqlite_utils.Database, ctx: state.Context) -> dict[str, dict]:
    today = ctx.now.date().isoformat()
    staff_active = db.execute("SELECT count(*) FROM staff WHERE active").fetchone()[0]
    checked_in, unknown, events, unsynced = db.execute(
        "SELECT count(DISTINCT staff_id), "
        "count(DISTINCT CASE WHEN staff_id IS NULL AND method='card' THEN credential END), "
        "count(*), sum(CASE WHEN clock_synced THEN 0 ELSE 1 END) "
        "FROM attendance_events WHERE local_date=?",
        (today,),
    ).fetchone()
    return {
        "presence": {
            "date": today,
            "staff_active": staff_active,
            "checked_in": checked_in or 0,
            "unknown_cards": unknown or 0,
            "events": events or 0,
            "unsynced_events": unsynced or 0,
        }
    }


DOMAIN = state.Domain("presence", builders=(build,))
