"""Who may do what in the console: roles, permissions and API scopes.

Every route carries one rule, set by ``@requires("perm")`` (a page or an
API route used with a session) or ``@requires_scope("scope")`` (an API
route; a session's role maps to scopes through ``ROLE_SCOPES``), or
``@public`` (login, health). ``guard`` in ``app.py`` reads the rule of the
matched route before the route runs. ``narrowed=True`` marks a route that
refuses further by itself (an officer at a desk not given to them).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..gateway.accounts import ROLES, SCOPES

# permission -> roles that have it (admin has everything, listed for clarity).
PERMISSIONS: dict[str, frozenset[str]] = {
    "dashboard.view": frozenset({"admin", "clerk", "officer", "viewer"}),
    "reports.view": frozenset({"admin", "clerk", "viewer"}),
    "staff.view": frozenset({"admin", "clerk"}),
    "staff.edit": frozenset({"admin", "clerk"}),
    "calendar.view": frozenset({"admin", "clerk"}),
    "calendar.edit": frozenset({"admin", "clerk"}),
    "announcements.view": frozenset({"admin", "clerk"}),
    "announcements.edit": frozenset({"admin", "clerk"}),
    "dossiers.view": frozenset({"admin", "clerk", "officer"}),
    "dossiers.edit": frozenset({"admin", "clerk", "officer"}),
    # The desks page: who is on duty where (officers see their own desks).
    "desks.view": frozenset({"admin", "clerk", "officer"}),
    # Opening and closing a rating session: an officer at the desks given to them.
    "desks.session": frozenset({"admin", "officer"}),
    # Ratings reports: officers see only their own (the route narrows).
    "ratings.view": frozenset({"admin", "clerk", "officer", "viewer"}),
    "devices.view": frozenset({"admin", "clerk"}),
    "devices.act": frozenset({"admin", "clerk"}),
    # Leave, corrections and holidays (the timesheet's inputs): the clerk enters, the viewer reads;
    # an officer may request leave for themselves only (the route narrows to their staff_id).
    "leave.view": frozenset({"admin", "clerk", "viewer"}),
    "leave.edit": frozenset({"admin", "clerk"}),
    "leave.request": frozenset({"admin", "officer"}),
    # Everything held about one person, as a download (a subject-access request).
    "staff.export": frozenset({"admin"}),
    "users.manage": frozenset({"admin"}),
    "audit.view": frozenset({"admin"}),
}

# What a logged-in user may do on /api/ with their session (and the CSRF header).
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(SCOPES),
    "clerk": frozenset(SCOPES),
    "officer": frozenset({"dossiers:read", "dossiers:write"}),
    "viewer": frozenset({"reports:read"}),
}


@dataclass(frozen=True)
class Rule:
    permission: str | None = None
    scope: str | None = None
    public: bool = False
    narrowed: bool = False

    def roles(self) -> frozenset[str]:
        """The roles a session may have to pass this rule."""
        if self.public:
            return frozenset(ROLES)
        if self.permission:
            return PERMISSIONS[self.permission]
        return frozenset(r for r, scopes in ROLE_SCOPES.items() if self.scope in scopes)


ATTRIBUTE = "__congso_access__"


def _mark(rule: Rule):
    def decorate(fn):
        setattr(fn, ATTRIBUTE, rule)
        return fn
    return decorate


def requires(permission: str, narrowed: bool = False):
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return _mark(Rule(permission=permission, narrowed=narrowed))


def requires_scope(scope: str, narrowed: bool = False):
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return _mark(Rule(scope=scope, narrowed=narrowed))


def public(fn):
    return _mark(Rule(public=True))(fn)


def rule_of(endpoint) -> Rule | None:
    return getattr(endpoint, ATTRIBUTE, None)


def can(role: str | None, permission: str) -> bool:
    return role is not None and role in PERMISSIONS[permission]
