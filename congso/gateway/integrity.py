"""The gateway's database file: sound at start, and still the file we opened.

Two faults a technician can cause without knowing it:

- The file is *removed or replaced* while the gateway runs (a "clean-up",
  a restore gone wrong). SQLite keeps writing to the open, deleted inode:
  every ack after that would promise an event that the next start cannot
  find. ``FileWatch`` notices (the path is gone or names another inode, or
  the open file has no link left) so the gateway stops acking, says so in
  its health and its log, and exits non-zero for systemd to restart it on
  the real file. The nodes keep everything unacked and send it again.
- The file is *damaged* ("database disk image is malformed"). ``start_check``
  runs ``PRAGMA integrity_check`` before the gateway opens it and stops with
  plain-words advice (``dbcheck.gateway_advice``) instead of a traceback.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from ..protocol import dbcheck

log = logging.getLogger(__name__)


class DatabaseDamaged(RuntimeError):
    """The gateway database fails its integrity check; the message says what to do."""


class FileWatch:
    """Is ``path`` still the file we opened? Two system calls per ``problem()``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        st = os.fstat(self._fd)
        self._identity = (st.st_dev, st.st_ino)

    def problem(self) -> str | None:
        """None while all is well; else what happened to the file, in words."""
        try:
            if os.fstat(self._fd).st_nlink == 0:
                return f"the database file {self.path} was deleted while the gateway ran"
            st = os.stat(self.path)
        except FileNotFoundError:
            return f"the database file {self.path} was removed or moved away while the gateway ran"
        except OSError as e:
            return f"the database file {self.path} cannot be checked: {e}"
        if (st.st_dev, st.st_ino) != self._identity:
            return f"the database file {self.path} was replaced by another file while the gateway ran"
        return None

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass


def start_check(path: str | Path) -> None:
    """Before the gateway opens its database: raise DatabaseDamaged with advice when it is not sound.

    A write-ahead log left behind by a database file that was removed
    belongs to no database any more: opened with a new, empty file it would
    be replayed into it. It is moved aside (kept, named ``.orphaned-<time>``).
    """
    path = Path(path)
    if not path.exists():
        for suffix in ("-wal", "-shm"):
            leftover = path.with_name(path.name + suffix)
            if leftover.exists():
                aside = leftover.with_name(f"{leftover.name}.orphaned-{time.strftime('%Y%m%d-%H%M%S')}")
                leftover.rename(aside)
                log.warning("moved %s aside to %s: its database file is gone", leftover, aside)
        return
    problems = dbcheck.check(path)
    if problems:
        raise DatabaseDamaged(dbcheck.gateway_advice(path, problems))
