"""Retained state: what the gateway tells every node, re-published on change.

Each domain module (staff, dossiers, calendar, announcements, ratings)
registers a *builder*: a function ``(db, ctx) -> {topic_name: payload}``
that turns the database into the payloads of its retained topics, without
``v`` or ``version`` (the publisher adds them). A payload of ``None``
clears the retained message (an empty payload, as for a closed desk
session). *Maintenance* functions ``(db, ctx) -> None`` run before the
builders on every tick: they expire desk sessions and the like.

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
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import sqlite_utils

from ..protocol import clock, messages, topics

log = logging.getLogger(__name__)

TICK_S = 0.25
REFRESH_S = 30.0
# Topics that change with every event go out at most this often: each
# publish is fanned out to every node (they all read state/#), and a morning
# storm at a big office would otherwise send the same figures to every
# door several times a second. The periodic rebuild sends the latest.
MIN_INTERVAL_S = {"presence": 10.0, "ratings": 5.0}


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

BUILDERS: list[Builder] = []
MAINTENANCE: list[Maintenance] = []


def builder(fn: Builder) -> Builder:
    """Decorator: register a state builder (modules register on import)."""
    BUILDERS.append(fn)
    return fn


def maintenance(fn: Maintenance) -> Maintenance:
    MAINTENANCE.append(fn)
    return fn


def load_domains() -> tuple:
    """Import every domain module so that its builders are registered."""
    from .domains import REGISTERED

    return REGISTERED


def topic_for(site: str, name: str) -> str:
    if name.startswith("desk/"):
        return topics.desk(site, name.split("/", 1)[1])
    return topics.state(site, name)


def _digest(payload: dict | None) -> str:
    if payload is None:
        return "cleared"
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Publisher:
    """Rebuilds state on change and publishes what changed (retained, QoS 1)."""

    def __init__(self, db: sqlite_utils.Database, settings, publish: Callable[[str, bytes, bool], object]):
        self.db = db
        self.settings = settings
        self.site = settings.site.id
        self.tz = settings.site.timezone
        self.publish = publish  # (topic, payload, retain)
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
        return Context(self.site, self.tz, clock.now(self.tz), self.settings)

    def _changed(self) -> bool:
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        changed = version != self._data_version
        self._data_version = version
        return changed

    def tick(self, monotonic_now: float) -> list[str]:
        """One round; returns the names published."""
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
        for fn in MAINTENANCE:
            try:
                with self.db.conn:
                    fn(self.db, ctx)
            except Exception:
                log.exception("state maintenance %s failed", fn.__name__)
        published = []
        for fn in BUILDERS:
            try:
                states = fn(self.db, ctx)
            except Exception:
                log.exception("state builder %s failed; its topics keep their last value", fn.__name__)
                continue
            for name, payload in states.items():
                if self._publish_if_changed(name, payload, ctx):
                    published.append(name)
        # A data_version read after our own writes, so they do not count as news.
        self._data_version = self.db.execute("PRAGMA data_version").fetchone()[0]
        return published

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
            kind = "desk" if name.startswith("desk/") else name
            data = messages.encode(kind, body)
        if payload is None and row is None:
            # Never published, nothing to clear.
            self._sent_this_run.add(name)
            return False
        now_mono = time.monotonic()
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
