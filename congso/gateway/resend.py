"""After a restore (or any replaced database): ask each node for what we lack.

Nodes keep acked events for ``[outbox] keep_acked_days``. At every start
the gateway notes the highest ``seq`` it holds from each node, and the first
time a node shows up alive (an event it acks, a health or an ``online``
status) its ack carries ``resend_after_seq`` N (an ack with no event ids
when there is nothing to ack; docs/protocol.md §4.5). The node
re-publishes every kept event after N; those we already hold are
duplicates, a no-op.

Asking at every start costs one small message per node and needs no "was
this a restore?" detection; asking when the node shows up, not at start,
reaches a node that was off at the time. It rides on the ack topic, which
every node reads, so it needs no command, reply or queue of its own.

N is read once at start, before anything is stored: a node's unacked
events arrive first after a restart, and a maximum read after them would
skip the acked ones in between.
"""

from __future__ import annotations

import logging
from typing import Iterable

import sqlite_utils

from ..protocol import messages, topics
from ..protocol.link import Incoming

log = logging.getLogger(__name__)


def held_seqs(db: sqlite_utils.Database) -> dict[str, int]:
    """The highest seq stored from each node (the (node_id, seq) indexes make each a lookup)."""
    held = {}
    for (node,) in db.execute("SELECT node_id FROM nodes").fetchall():
        seqs = [db.execute(f"SELECT max(seq) FROM {table} WHERE node_id=?", (node,)).fetchone()[0]
                for table in ("attendance_events", "rating_events")]
        held[node] = max((s for s in seqs if s is not None), default=0)
    return held


class ResendAsker:
    def __init__(self, db: sqlite_utils.Database):
        self.held = held_seqs(db)
        self.asked: set[str] = {topics.GATEWAY_ID}

    def due(self, batch: list[Incoming], acked: Iterable[str]) -> dict[str, int]:
        """After a batch is stored: the nodes to ask now, with the seq to ask after.

        A node counts as alive by an event the batch acked (``acked``: their
        node ids) or a valid health or ``online`` status of its own; a
        rejected message is no sign of a node.
        """
        alive = set(acked)
        for item in batch:
            parts = item.topic.split("/")
            if len(parts) == 5 and parts[2] == "node" and parts[4] in ("health", "status") and parts[3] not in self.asked:
                if _alive(parts[3], parts[4], item.payload):
                    alive.add(parts[3])
        due = {node: self.held.get(node, 0) for node in sorted(alive - self.asked)}
        for node, after in due.items():
            self.asked.add(node)
            log.info("asked %s for every event after seq %d (nodes keep acked events for [outbox] keep_acked_days)",
                     node, after)
        return due


def _alive(node: str, leaf: str, payload: bytes) -> bool:
    try:
        msg = messages.decode(leaf, payload)
    except messages.MessageError:
        return False
    return msg["node_id"] == node and (leaf == "health" or msg["state"] == "online")
