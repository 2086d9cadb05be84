"""Every gateway domain, in one list: what the gateway builds, maintains and answers.

Each domain module describes itself in a ``state.Domain`` record (its
retained-state builders, its maintenance, its reply hooks); nothing is
registered by importing a module. The gateway hands ``DOMAINS`` to its
``state.Publisher`` and ``state.reply_hooks(DOMAINS)`` to
``commands.run_reply_hooks``; a test builds a publisher with a list of its
own. A new domain: a module with a ``DOMAIN`` record, added here
(docs/architecture.md).

The order is the order of building and of publishing; one failing domain
never holds up those after it.
"""

from __future__ import annotations

from . import announcements, dossiers, duty, kpi, presence, ratings, registry, staff, urgent, work_calendar
from .state import Domain

DOMAINS: tuple[Domain, ...] = (
    registry.DOMAIN,       # node alerts (maintenance)
    staff.DOMAIN,          # the doors' roster; finger enrolment replies
    presence.DOMAIN,       # today's attendance figures
    dossiers.DOMAIN,       # the dossier board
    work_calendar.DOMAIN,  # the week's work calendar
    announcements.DOMAIN,  # the hall's announcements
    urgent.DOMAIN,         # an urgent notice over every TV page
    ratings.DOMAIN,        # ratings summary, desk sessions (and their expiry)
    duty.DOMAIN,           # who holds each desk; the officers' card hashes for the kiosks
    kpi.DOMAIN,            # the month's figures for the hall TV's kpi page
)
