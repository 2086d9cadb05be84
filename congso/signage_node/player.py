"""Video slides: the TV hands the screen to a player for one clip and takes it back.

``[signage] video_player`` is the command (on a Pi, mpv with DRM output and
hardware decoding where it has it); the cached file's path is added last.
The render thread waits for it, still pinging the systemd watchdog and
answering commands, until the player exits or the clip's length plus
``[signage] video_grace_s`` has passed (then it is stopped: SIGTERM, SIGKILL).

A clip that cannot play (player missing, non-zero exit, file gone) is
remembered as failed for ``FAILED_FOR_S`` so the rotation does not retry it
every turn, and health says so (``devices.video: error``, ``video_problem``).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FAILED_FOR_S = 600.0  # a failed clip is not tried again for this long
POLL_S = 0.1
STDERR_TAIL = 400


@dataclass
class PlayResult:
    ok: bool
    seconds: float  # how long the player had the screen
    problem: str | None = None
    started_mono: float = 0.0
    ended_mono: float = 0.0


class VideoPlayer:
    def __init__(self, command: list[str], grace_s: float, failed_for_s: float = FAILED_FOR_S):
        self.command = [str(c) for c in command if str(c).strip()]
        self.grace_s = float(grace_s)
        self.failed_for_s = failed_for_s
        self._failed: dict[str, float] = {}  # sha256 -> until (monotonic)
        self._lock = threading.Lock()  # health reads it from the heartbeat's thread
        self.last_problem: str | None = None
        self.played = 0
        self.failures = 0

    @property
    def available(self) -> bool:
        return bool(self.command) and shutil.which(self.command[0]) is not None

    def status(self) -> str:
        """For health's devices: ok, missing (no player installed), error (the last clip failed)."""
        if not self.available:
            return "missing"
        return "error" if self.recent_failures() else "ok"

    def recent_failures(self, mono: float | None = None) -> set[str]:
        mono = time.monotonic() if mono is None else mono
        with self._lock:
            for sha in [s for s, until in self._failed.items() if until <= mono]:
                del self._failed[sha]
            return set(self._failed)

    def failed(self, sha256: str) -> bool:
        return sha256 in self.recent_failures()

    def _fail(self, sha256: str, problem: str) -> PlayResult:
        with self._lock:
            self._failed[sha256] = time.monotonic() + self.failed_for_s
        self.failures += 1
        if problem != self.last_problem:
            log.warning("video %s skipped: %s", sha256[:12], problem)
        self.last_problem = problem
        return PlayResult(False, 0.0, problem)

    def check(self, sha256: str, path: Path | None) -> PlayResult | None:
        """Why the clip cannot be handed over now (before the screen is released), or None."""
        if not self.command:
            return self._fail(sha256, "[signage] video_player is empty")
        if shutil.which(self.command[0]) is None:
            return self._fail(sha256, f"video player {self.command[0]!r} not found: install it "
                                      "(apt install mpv) or set [signage] video_player")
        if path is None or not Path(path).is_file():
            return self._fail(sha256, f"the clip's file {path} is not in the cache")
        return None

    def play(self, sha256: str, path: Path, duration_s: float, keep_alive, stop) -> PlayResult:
        """Run the player on ``path``; ``keep_alive()`` is called every POLL_S while it plays;
        ``stop()`` True ends it early (the service is stopping, an urgent notice came)."""
        limit = max(1.0, float(duration_s or 0)) + self.grace_s
        started = time.monotonic()
        errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty player never blocks on a full pipe
        try:
            proc = subprocess.Popen(self.command + [str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=errors, start_new_session=True)
        except OSError as e:
            errors.close()
            return self._fail(sha256, f"could not start {self.command[0]}: {e}")
        timed_out = interrupted = False
        while proc.poll() is None:
            keep_alive()
            interrupted = stop()
            timed_out = not interrupted and time.monotonic() - started > limit
            if interrupted or timed_out:
                _end(proc)
                break
            time.sleep(POLL_S)
        ended = time.monotonic()
        errors.seek(0)
        err = errors.read()[-STDERR_TAIL:].decode("utf-8", "replace").strip()
        errors.close()
        seconds = ended - started
        if timed_out:
            self.last_problem = (f"{self.command[0]} still playing {seconds:.0f} s after the start of a "
                                 f"{duration_s or 0:.0f} s clip: stopped ([signage] video_grace_s)")
            log.warning("video %s: %s", sha256[:12], self.last_problem)
            self.played += 1
            return PlayResult(True, seconds, self.last_problem, started, ended)
        if proc.returncode != 0 and not interrupted:
            result = self._fail(sha256, f"{self.command[0]} exited with code {proc.returncode} after {seconds:.1f} s"
                                        + (f": {err.splitlines()[-1]}" if err else ""))
            result.seconds, result.started_mono, result.ended_mono = seconds, started, ended
            return result
        self.played += 1
        with self._lock:
            self._failed.pop(sha256, None)
        return PlayResult(True, seconds, None, started, ended)


def _end(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(2.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(2.0)
