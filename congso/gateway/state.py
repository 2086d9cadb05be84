"""Retained state: what the gateway tells every node, re-published on change.

Each domain module (staff, dossiers, calendar, announcements, ratings, ...)
describes itself in one ``Domain`` record, and ``domains.DOMAINS`` lists
them all: nothing registers by being imported. A domain's *builders* are
functions ``(db, ctx) -> {topic_name: payload}`` that turn the database into
the payloads of its retained topics, without ``v`` or ``version`` (the
publisher adds them). A payload of ``None`` clears the retained message (an
empty payload, as for a closed desk session). Its *maintenance* functions
``(db, ctx) -> None`` run before the builders on every rebuild: they expire
desk sessions and the like. Its *reply hooks* act on nodes' replies
(``commands.run_reply_hooks``). What they need comes in as arguments: the
database, and ``ctx`` with the office's time (from the publisher's clock)
and the settings.

One domain failing never holds up the others: a builder or a publish that
raises is logged (once a minute per domain, not at every tick) and the
other topics go out; the failed ones keep their last retained value and are
tried again at the next rebuild.

Why a publisher loop rather than "publish after each CLI command": the CLI
runs in another process and writes the database directly (it works while
the gateway is down, too). The publisher notices any commit by any process
through ``PRAGMA data_version`` within ``TICK_S``, rebuilds, and publishes
only the topics whose content changed. It also rebuilds every
``REFRESH_S`` for what changes with the clock alone (the week turns, a
session expires, today's ratings become yesterday's).

Versions only grow: the last version and a digest of each topic's content
are kept in ``published_state``, so a restarted gateway goes on from there
and re-publishes everything once at start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Mapping, Sequence

import sqlite_utils

from ..protocol import clock, messages, topics
from .commands import ReplyHook  # (db, the command as queued, the node's reply)

log = logging.getLogger(__name__)

TICK_S = 0.25
REFRESH_S = 30.0
# Topics that change with every event go out at most this often: each
# publish is fanned out to every node (they all read state/#), and a morning
# storm at a big office would otherwise send the same figures to every
# door several times a second. The periodic rebuild sends the latest.
MIN_INTERVAL_S = {"presence": 10.0, "ratings": 5.0, "kpi": 60.0}


@dataclass(frozen=True)
class Context:
    site: str
    tz: str
    now: datetime  # aware, in the office's zone
    settings: object = None  # the gateway's Settings


# name -> payload (without v/version) or None to clear. ``name`` is a state
# name ("roster") or "desk/<desk_id>".
Builder = Callable[[sqlite_utils.Database, Context], dict[str, dict | None]]
Maintenance = Callable[[sqlite_utils.Database, Context], None]


# A failing domain is logged at most this often (the loop ticks 4 times a second).
FAILURE_LOG_EVERY_S = 60.0


@dataclass(frozen=True)
class Domain:
    """One gateway domain, as ``domains.DOMAINS`` lists it."""

    name: str
    builders: tuple[Builder, ...] = ()
    maintenance: tuple[Maintenance, ...] = ()
    reply_hooks: Mapping[str, ReplyHook] = field(default_factory=dict)  # command name -> hook


def reply_hooks(domains: Sequence[Domain]) -> dict[str, list[ReplyHook]]:
    """command name -> the hooks of every domain that acts on its reply, in the list's order."""
    out: dict[str, list[ReplyHook]] = {}
    for domain in domains:
        for cmd, hook in domain.reply_hooks.items():
            out.setdefault(cmd, []).append(hook)
    return out


@dataclass(frozen=True)
class Clock:
    """Where the publisher reads the time: the system's, or a test's."""

    now: Callable[[str], datetime] = clock.now  # (zone) -> aware datetime in that zone
    monotonic: Callable[[], float] = time.monotonic


SYSTEM_CLOCK = Clock()


def topic_for(site: str, name: str) -> str:
    if name.startswith("desk/"):
        return topics.desk(site, name.split("/", 1)[1])
    return topics.state(site, name)


def _digest(payload: dict | None) -> str:
    if payload is None:
        return "cleared"
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Publisher:
    """Rebuilds state on change and publishes what changed (retained, QoS 1).

    ``domains``: what to build (``domains.DOMAINS`` in the gateway, a test's
    own list in a test); ``clock``: where the time comes from.
    """

    def __init__(self, db: sqlite_utils.Database, settings, publish: Callable[[str, bytes, bool], object],
                 domains: Sequence[Domain], clock: Clock = SYSTEM_CLOCK):
        self.db = db
        self.settings = settings
        self.site = settings.site.id
        self.tz = settings.site.timezone
        self.publish = publish  # (topic, payload, retain)
        self.domains = tuple(domains)
        self.clock = clock
        self._failure_logged_at: dict[str, float] = {}  # domain name -> monotonic time of its last logged failure
        self._data_version: int | None = None
        self._built_at = 0.0
        self._forced = threading.Event()
        self._sent_this_run: set[str] = set()
        self._sent_at: dict[str, float] = {}  # name -> monotonic time of the last publish
        self._paced = False
        self.on_tick: list[Callable[[], None]] = []  # e.g. sending queued commands

    def poke(self) -> None:
        """Rebuild at the next tick (after the gateway's own commits)."""
        self._forced.set()

    def context(self) -> Context:
        return Context(self.site, self.tz, self.clock.now(self.tz), self.settings)

    def _changed(self) -> bool:
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        changed = version != self._data_version
        self._data_version = version
        return changed

    def tick(self, monotonic_now: float | None = None) -> list[str]:
        """One round; returns the names published."""
        if monotonic_now is None:
            monotonic_now = self.clock.monotonic()
        for fn in self.on_tick:
            fn()
        forced = self._forced.is_set()
        self._forced.clear()
        if not (self._changed() or forced or monotonic_now - self._built_at >= REFRESH_S):
            return []
        self._built_at = monotonic_now
        return self.rebuild(paced=True)

    def rebuild(self, paced: bool = False) -> list[str]:
        """Build every topic and publish what changed; ``paced``: hold back the
        topics of MIN_INTERVAL_S published too recently (the live loop)."""
        self._paced = paced
        ctx = self.context()
        for domain in self.domains:
            for fn in domain.maintenance:
                try:
                    with self.db.conn:
                        fn(self.db, ctx)
                except Exception:
                    self._failed(domain, f"maintenance {fn.__name__} failed")
        published = []
        for domain in self.domains:
            for fn in domain.builders:
                try:
                    states = fn(self.db, ctx)
                except Exception:
                    self._failed(domain, f"builder {fn.__name__} failed; its topics keep their last value")
                    continue
                for name, payload in states.items():
                    try:
                        if self._publish_if_changed(name, payload, ctx):
                            published.append(name)
                    except Exception:
                        # A payload over the size limit, a publish that raised:
                        # this topic keeps its last value, the others go on.
                        self._failed(domain, f"publishing {name} failed; it keeps its last value")
        # A data_version read after our own writes, so they do not count as news.
        self._data_version = self.db.execute("PRAGMA data_version").fetchone()[0]
        return published

    def _failed(self, domain: Domain, what: str) -> None:
        """Log a domain's failure with its traceback, at most once a minute per domain."""
        now = self.clock.monotonic()
        last = self._failure_logged_at.get(domain.name)
        if last is not None and now - last < FAILURE_LOG_EVERY_S:
            log.debug("state domain %s: %s (again)", domain.name, what, exc_info=True)
            return
        self._failure_logged_at[domain.name] = now
        log.exception("state domain %s: %s (logged at most once a minute)", domain.name, what)

    def _publish_if_changed(self, name: str, payload: dict | None, ctx: Context) -> bool:
        digest = _digest(payload)
        row = self.db.execute("SELECT version, digest FROM published_state WHERE name=?", (name,)).fetchone()
        version, old_digest = (row[0], row[1]) if row else (0, None)
        # Publish once per gateway run even when unchanged: a broker that lost
        # its retained store (fresh install) gets everything back.
        if digest == old_digest and name in self._sent_this_run:
            return False
        if payload is None and old_digest in (None, "cleared") and name in self._sent_this_run:
            return False
        topic = topic_for(self.site, name)
        if payload is None:
            data = b""
        else:
            if digest != old_digest:
                version += 1
            body = {"v": messages.VERSION, **payload}
            if not name.startswith("desk/"):
                body["version"] = version
            data = messages.encode(messages.state_kind(name), body)
        if payload is None and row is None:
            # Never published, nothing to clear.
            self._sent_this_run.add(name)
            return False
        now_mono = self.clock.monotonic()
        if (self._paced and name in self._sent_this_run
                and now_mono - self._sent_at.get(name, 0.0) < MIN_INTERVAL_S.get(name, 0.0)):
            return False  # too soon: a later rebuild (at most REFRESH_S away) sends it
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO published_state(name, version, digest, published_at, payload) VALUES (?,?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET version=excluded.version, digest=excluded.digest, "
                "published_at=excluded.published_at, payload=excluded.payload",
                (name, version, digest, ctx.now.isoformat(timespec="seconds"), data.decode("utf-8")),
            )
        self.publish(topic, data, True)
        self._sent_this_run.add(name)
        self._sent_at[name] = now_mono
        log.info("published %s (version %d)", name, version)
        return True
