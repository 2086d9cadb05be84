"""Is an SQLite file sound? ``PRAGMA integrity_check`` and what to do when it is not, in plain words.

Used for the gateway's database (``congso gateway check-db``, the check at
start, every CLI command that opens it) and for a node's outbox (the check
at node start, ``congso status``). A damaged file must never end in a bare
"database disk image is malformed" traceback: the technician gets told
which file, what is wrong and what to do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# sqlite3 error texts that mean the file itself is damaged or not a database.
DAMAGE_WORDS = ("malformed", "not a database", "corrupt", "disk image")


def is_damage(error: BaseException) -> bool:
    return isinstance(error, sqlite3.DatabaseError) and any(w in str(error).lower() for w in DAMAGE_WORDS)


def check(path: str | Path, quick: bool = False, limit: int = 20) -> list[str]:
    """The problems ``integrity_check`` (or ``quick_check``) finds in the file at ``path``; [] when it is sound.

    Opened read-only: checking never changes or creates the file.
    """
    path = Path(path)
    pragma = "quick_check" if quick else "integrity_check"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as e:
        return [f"cannot open: {e}"]
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}({int(limit)})")]
    except sqlite3.DatabaseError as e:
        return [str(e)]
    finally:
        conn.close()
    return [] if rows == ["ok"] else [str(r) for r in rows]


def gateway_advice(path: str | Path, problems: list[str] | str) -> str:
    """What a technician does about a damaged gateway database."""
    what = problems if isinstance(problems, str) else "; ".join(problems[:3])
    return (
        f"the gateway database {path} is damaged ({what}).\n"
        "What to do:\n"
        "  1. stop the gateway:  sudo systemctl stop congso-gateway\n"
        "  2. restore the latest good backup:  congso gateway restore FILE\n"
        f"     or, with no backup, move the damaged file aside (mv {path} {path}.damaged) and start again:\n"
        "     the nodes send again what they still keep\n"
        "  3. start the gateway:  sudo systemctl start congso-gateway\n"
        "Check a file with: congso gateway check-db"
    )


def outbox_advice(path: str | Path, problems: list[str] | str) -> str:
    """What a technician does about a damaged outbox at a node."""
    what = problems if isinstance(problems, str) else "; ".join(problems[:3])
    return (
        f"this node's outbox {path} is damaged ({what}): scans cannot be stored.\n"
        "What to do: stop the node program (sudo systemctl stop congso-<role>), move the file aside "
        f"(mv {path} {path}.damaged; it may still hold unsent events, keep it for recovery) and start it again."
    )
