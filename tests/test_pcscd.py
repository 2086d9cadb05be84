"""The pcscd helper of the tests and the demo stops only a pcscd that it started.

A developer's machine runs Debian's pcscd (``pcscd.socket``); a Pi may too.
Killing it to start one of our own would take the reader away from whatever
uses it. A pcscd that an earlier run of ours started and never stopped (the
run was killed) is ours, though, and may go.
"""

from __future__ import annotations

import subprocess

import pytest

from conftest import own_pcscd, wait_for
from congso.devices import pcscd as pcscd_mod
from congso.devices.pcscd import PcscDaemon, PcscdError, find_pcscd, foreign_pcscd, is_running, vpcd_lock


@pytest.fixture
def no_pcscd(tmp_path):
    """The vpcd lock, and no pcscd running (one of ours is started and stopped to be sure)."""
    with vpcd_lock():
        own_pcscd(tmp_path / "ours.log").stop()
        yield


def test_a_pcscd_it_did_not_start_is_left_running_and_named(no_pcscd, tmp_path):
    # Started the way the system starts it, not by a PcscDaemon.
    with open(tmp_path / "system.log", "wb") as log:
        system = subprocess.Popen([find_pcscd(), "--foreground"], stdout=log, stderr=log, process_group=0)
    try:
        wait_for(lambda: is_running() or system.poll() is not None, 10, "the system's pcscd")
        assert is_running() and system.poll() is None
        assert foreign_pcscd() == system.pid

        with pytest.raises(PcscdError, match=rf"another pcscd is already running \(pid {system.pid}\)"):
            PcscDaemon(log_path=tmp_path / "ours.log").start()
        # The tests' fixture skips (fails, in CI) naming it, and leaves it running.
        with pytest.raises((pytest.skip.Exception, pytest.fail.Exception),
                           match=rf"a pcscd that the tests did not start is running \(pid {system.pid};"):
            own_pcscd(tmp_path / "ours.log")
        assert system.poll() is None, "the helper stopped a pcscd that it did not start"
        assert is_running()
    finally:
        system.terminate()
        system.wait(10)


def test_a_pcscd_left_by_an_earlier_run_of_ours_is_stopped_and_replaced(no_pcscd, tmp_path):
    earlier = PcscDaemon(log_path=tmp_path / "earlier.log").start()
    # That run dies without stopping it: only the owned-file remembers it.
    assert pcscd_mod.left_by_us(earlier.proc.pid) and foreign_pcscd() is None

    now = PcscDaemon(log_path=tmp_path / "now.log").start()
    try:
        assert earlier.proc.wait(10) is not None  # SIGTERMed by the new start
        assert now.running() and pcscd_mod.left_by_us(now.proc.pid)
    finally:
        now.stop()
    assert not pcscd_mod.left_by_us(now.proc.pid) and not is_running()
