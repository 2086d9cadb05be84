"""A gateway whose disk is full acks nothing, says so, and loses nothing."""

from __future__ import annotations

import sqlite3
import threading
from datetime import date

from congso.gateway.service import Gateway
from congso.protocol.node import NodeRuntime

from conftest import query, wait_for


def test_full_disk_at_the_gateway_keeps_events_on_the_node(broker, tmp_path):
    gw = Gateway(broker.settings("gateway", tmp_path / "gateway"))
    # SQLite's own "database or disk is full", as when the SD card fills up.
    pages = gw.db.execute("PRAGMA page_count").fetchone()[0]
    gw.db.execute(f"PRAGMA max_page_count={pages}")
    # The limit is per connection: the state publisher's too (a full disk is full for everyone).
    gw.publisher.db.execute(f"PRAGMA max_page_count={pages}")
    # Fill the room left in the pages the database already has, so that even
    # one small event needs a page the disk does not have.
    filled = 0
    # Today's date: the gateway's daily retention round must not free the room by pruning them.
    today = date.today().isoformat()
    while True:
        try:
            with gw.db.conn:
                gw.db.conn.execute(
                    "INSERT INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, "
                    "payload, method, credential) VALUES (?, 'filler', ?, '', ?, 1, '', '', 'card', '')",
                    (f"f{filled}", filled, today))
            filled += 1
        except sqlite3.OperationalError as e:
            assert "full" in str(e)
            break
    runner = threading.Thread(target=gw.run, daemon=True)
    runner.start()
    node = NodeRuntime(broker.settings("node-a", tmp_path / "node-a"), kind="attendance")
    node.start()
    try:
        for i in range(50):
            node.record("attendance", {"method": "card", "credential": f"04{i:012X}", "staff_id": None, "match_score": None})
        wait_for(lambda: gw.db_error is not None, 10, "the gateway to notice the full disk")
        assert "full" in gw.db_error
        assert node.outbox.depth() == 50  # nothing acked: the node keeps every event

        gw.db.execute("PRAGMA max_page_count=1073741823")  # space again
        wait_for(lambda: node.outbox.depth() == 0, 30, "the node's re-sends to be stored and acked")
        assert gw.db_error is None
        db = tmp_path / "gateway" / "gateway.sqlite"
        assert query(db, "SELECT count(*), count(DISTINCT seq) FROM attendance_events WHERE node_id='node-a'") == [(50, 50)]
    finally:
        node.stop()
        gw.request_stop()
        runner.join(15)
    assert not runner.is_alive()
