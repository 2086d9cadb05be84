"""Cost on a Pi, estimated: the same commands on this machine and in the
arm64 Debian 12 root filesystem that `make pi-check` leaves (run through
qemu-user-static), side by side in one run.

    sudo .venv/bin/python bench/pi.py          (after make pi-check)

Measured, for each side: `congso --help` (wall time, median of 3), and the
door's and the TV's first 15 s of CPU after start and their RSS after 20 s.
qemu-user adds its own memory to every process (its translated-code
buffer, its host heap, its own binary), so the arm64 RSS is also given less
those mappings, read from /proc/PID/smaps; a bare `python3 -c "import time;
time.sleep(...)"` on both sides shows how close that comes (see
docs/performance.md).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "pi"))
import check as pi  # noqa: E402  (pi/check.py: the cache and the chroot's mounts)

RUN_S, CPU_S = 20.0, 15.0
NODE_ENV = {
    "CONGSO_CLOCK_SYNCED": "yes", "CONGSO_MQTT_PORT": "1", "CONGSO_LOG_LEVEL": "WARNING",
    "CONGSO_MQTT_RECONNECT_MIN_S": "30", "CONGSO_MQTT_RECONNECT_MAX_S": "60",
}
DOOR_ENV = {"CONGSO_NODE_ID": "door-1", "CONGSO_FINGERPRINT_BACKEND": "emulator", "CONGSO_CARD_BACKEND": "none",
            "GPIOZERO_PIN_FACTORY": "mock", "CONGSO_GPIO_GREEN_LED": "GPIO17", "CONGSO_GPIO_RED_LED": "GPIO18",
            "CONGSO_GPIO_BUZZER": "GPIO22", "CONGSO_GPIO_RELAY": "GPIO27"}
TV_ENV = {"CONGSO_NODE_ID": "tv-1", "SDL_VIDEODRIVER": "dummy", "CONGSO_DISPLAY_WIDTH": "1920",
          "CONGSO_DISPLAY_HEIGHT": "1080", "CONGSO_SIGNAGE_CEC": "none", "CONGSO_SIGNAGE_ON_HOURS": "00:00-24:00",
          "CONGSO_SIGNAGE_ON_DAYS": "monday,tuesday,wednesday,thursday,friday,saturday,sunday"}


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _usage(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system, children reaped included) and RSS bytes of the tree."""
    tick, cpu, rss = os.sysconf("SC_CLK_TCK"), 0.0, 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += sum(int(f) for f in fields[11:15]) / tick
            status = Path(f"/proc/{p}/status").read_text()
            rss += int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return cpu, rss


def _qemu_own(pid: int) -> int:
    """Bytes of a qemu-user process's RSS that are qemu's, not the guest's:
    qemu's own binary, its translated-code buffer (the one mapping both
    writable and executable) and its host heap and stack. The guest's
    memory, heap included, is plain mappings inside the guest's space."""
    own, keep = 0, True
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            perms, path = fields[1], (fields[5] if len(fields) > 5 else "")
            keep = not ("qemu" in path or "binfmt" in path or ("w" in perms and "x" in perms)
                        or path in ("[heap]", "[stack]"))
        elif fields and fields[0] == "Rss:" and not keep:
            own += int(fields[1]) * 1024
    return own


def measure(args: list[str], env: dict) -> tuple[float, int, int]:
    """(CPU seconds in the first CPU_S after start, RSS after RUN_S, the part of it that is qemu's own)."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        start = time.monotonic()
        cpu15 = 0.0
        while time.monotonic() - start < CPU_S:
            cpu15 = max(cpu15, _usage(proc.pid)[0])
            time.sleep(0.2)
        time.sleep(max(0.0, RUN_S - (time.monotonic() - start)))
        _, rss = _usage(proc.pid)
        own = sum(_qemu_own(p) for p in _tree(proc.pid))
        if proc.poll() is not None:
            raise RuntimeError(f"{' '.join(args)} exited early: {proc.stderr.read().decode()[-2000:]}")
        return cpu15, rss, own
    finally:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.wait()


def wall(args: list[str], env: dict, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def side(name: str, python: list[str], base_env: dict, data: Path, data_inside: str) -> dict:
    print(f"... {name}", flush=True)
    congso = [*python, "-m", "congso"]
    out = {"help": wall([*congso, "--help"], base_env)}
    out["bare"] = measure([*python, "-c", f"import time; time.sleep({RUN_S + 5})"], base_env)
    for node, env in (("door", DOOR_ENV), ("tv", TV_ENV)):
        shutil.rmtree(data / node, ignore_errors=True)
        (data / node).mkdir(parents=True)
        role = "attendance" if node == "door" else "signage"
        out[node] = measure([*congso, role, "run"],
                            {**base_env, **NODE_ENV, **env, "CONGSO_DATA_DIR": f"{data_inside}/{node}"})
    return out


def main() -> int:
    if not (pi.WORK / "opt/congso/venv/bin/python").exists():
        sys.exit(f"no arm64 root filesystem with congso in {pi.WORK}: run make pi-check first")
    host_env = {k: v for k, v in os.environ.items() if not k.startswith(("CONGSO_", "SDL_"))}
    host_data = Path("/tmp/congso-bench-pi")
    x86 = side("x86-64 (this machine)", [str(HERE / ".venv/bin/python")], host_env, host_data, str(host_data))
    with pi.Mounts(pi.WORK):
        arm = side("arm64 (qemu-user)", ["chroot", str(pi.WORK), "/opt/congso/venv/bin/python"],
                   dict(pi.CHROOT_ENV), pi.WORK / "tmp/congso-bench-pi", "/tmp/congso-bench-pi")
    mib = 1024 * 1024
    print(f"\nwindow: CPU over the first {CPU_S:.0f} s, RSS after {RUN_S:.0f} s; 2 shared cores\n")
    print("| | x86-64 | arm64 (qemu-user) | ratio | arm64 RSS less qemu's own (its code buffer, heap, binary) |")
    print("|---|---|---|---|---|")
    print(f"| `congso --help` | {x86['help']:.2f} s | {arm['help']:.2f} s | {arm['help'] / x86['help']:.1f}x | |")
    for node, label in (("bare", "bare python3"), ("door", "door"), ("tv", "TV")):
        (c1, r1, _), (c2, r2, own) = x86[node], arm[node]
        if node != "bare":
            print(f"| {label}: CPU, first {CPU_S:.0f} s | {c1:.2f} s | {c2:.2f} s | {c2 / c1:.1f}x | |")
        print(f"| {label}: RSS | {r1 / mib:.0f} MiB | {r2 / mib:.0f} MiB | | {(r2 - own) / mib:.0f} MiB |")
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench/pi.py needs root (chroot): sudo .venv/bin/python bench/pi.py")
    sys.exit(main())
