"""The last good retained state, kept on the node's disk.

A door must resolve cards from the roster at boot with the network down; a
TV must draw the last board from its first frame. Each valid state message
is written atomically (temporary file, fsync, rename), so a power cut
leaves either the old or the new file, never half of one. Only payloads
that passed validation are written: an invalid message keeps the last good
one.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from . import messages

log = logging.getLogger(__name__)


def _file_name(name: str) -> str:
    # "desk/mot-cua-1" -> "desk-mot-cua-1.json"; ids are [a-z0-9-] already.
    return name.replace("/", "-") + ".json"


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StateCache:
    """``<data dir>/state/<name>.json`` for each retained state this node keeps."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)

    def save(self, name: str, payload: dict | None) -> None:
        """Keep ``payload`` (already validated); None forgets it (a cleared desk session)."""
        path = self.dir / _file_name(name)
        try:
            if payload is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, messages.dumps(payload))
        except OSError as e:
            # A full disk must not stop the node: it keeps the state in memory.
            log.error("could not keep state %s on disk: %s", name, e)

    def load(self, name: str) -> dict | None:
        path = self.dir / _file_name(name)
        try:
            return messages.decode(messages.state_kind(name), path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, messages.MessageError) as e:
            log.error("ignoring the kept state %s: %s", path, e)
            return None

    def load_all(self) -> dict[str, dict]:
        found = {}
        if not self.dir.is_dir():
            return found
        for path in sorted(self.dir.glob("*.json")):
            stem = path.stem
            name = "desk/" + stem[len("desk-"):] if stem.startswith("desk-") else stem
            payload = self.load(name)
            if payload is not None:
                found[name] = payload
        return found
