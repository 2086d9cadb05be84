"""Device benchmark: what the drivers cost on top of what the hardware forces.

    .venv/bin/python bench/devices.py [--repeat N] [--taps N] [--no-card]

1. Fingerprint: each command through ``FingerprintModule`` to the module
   emulator on a real pty, measured two ways side by side in the same run:
   - "wire": the emulator holds every packet for its time on a 57600-baud
     line and answers at once otherwise. The floor is that wire time (command
     bytes + reply bytes, 10 bits a byte); driver minus floor is what the
     driver and the pty add.
   - "no wire": the emulator answers at once; the whole time is driver,
     pyserial and pty overhead.
   The sensor's own work (capture 150 ms, template 300 ms on a real R503)
   is left out (emulator timing 0): it is the module's time, not ours.
2. Card: a virtual card inserted into pcscd's vpcd reader, timed until
   ``CardReader`` calls back with the UID (p50, p99), from the card placed
   and from pcscd having it powered, against the bare pyscard round trip
   (connect + FF CA) on the same reader.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

from congso.devices.fingerprint import FingerprintModule
from congso.devices.fingerprint.emulator import TEMPLATE_SIZE, FingerprintEmulator

BAUD = 57600


def wire_ms(n_bytes: int) -> float:
    return n_bytes * 10 / BAUD * 1000


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def fingerprint_cases(module: FingerprintModule, emu: FingerprintEmulator, packet_size: int):
    """(name, callable, command bytes + reply bytes on the wire)."""
    ack = 12
    n_packets = -(-TEMPLATE_SIZE // packet_size)
    data_bytes = TEMPLATE_SIZE + n_packets * 11
    return [
        ("VfyPwd", lambda: module.verify_password(0), 16 + ack),
        ("ReadSysPara", module.read_system_parameters, 12 + ack + 16),
        ("TemplateNum", module.template_count, 12 + ack + 2),
        ("ReadIndexTable", lambda: module.read_index_table(0), 13 + ack + 32),
        ("GenImg (no finger)", module.gen_img, 12 + ack),
        ("Search (200 slots)", lambda: module.search(1, 0, 200), 17 + ack + 4),
        ("LoadChar", lambda: module.load_char(1, 0), 15 + ack),
        ("UpChar (512 B)", lambda: module.up_char(1), 13 + ack + data_bytes),
        ("Store", lambda: module.store(1, 1), 15 + ack),
        # DownChar returns once the bytes are written; the Store after it
        # is answered only when the module has them all.
        ("DownChar+Store (512 B)", lambda: module.import_template(2, emu.library[0]), 13 + ack + data_bytes + 15 + ack),
    ]


def bench_fingerprint(repeat: int) -> None:
    print(f"Fingerprint driver per command, {repeat} runs each, p50 and p99 in ms")
    print(f"{'command':<22} {'bytes':>6} {'floor':>7} | {'wire p50':>8} {'p99':>7} {'over':>6} | {'no wire p50':>11} {'p99':>7}")
    results = {}
    names = []
    for wire in (True, False):
        with FingerprintEmulator(timing=0, wire=wire, seed=1) as emu:
            emu.enroll_directly("bench-finger", 0)
            emu.place("bench-finger")
            module = FingerprintModule(emu.port, timeout_s=2)
            module.open()
            module.capture(1)  # a template in buffer 1 for Search/Store
            emu.lift()
            for name, call, n_bytes in fingerprint_cases(module, emu, emu.packet_size):
                times = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - started) * 1000)
                results[(name, wire)] = (times, n_bytes)
                if wire:
                    names.append(name)
            module.close()
    for name in names:
        wired, n_bytes = results[(name, True)]
        bare, _ = results[(name, False)]
        floor = wire_ms(n_bytes)
        p50 = statistics.median(wired)
        print(
            f"{name:<22} {n_bytes:>6} {floor:>7.2f} | {p50:>8.2f} {pct(wired, 99):>7.2f} {p50 - floor:>+6.2f} | "
            f"{statistics.median(bare):>11.2f} {pct(bare, 99):>7.2f}"
        )
    print("floor: bytes on a 57600-baud line; over: wire p50 minus floor (driver + pyserial + pty)\n")


def bench_card(taps: int) -> None:
    from smartcard.System import readers

    from congso.devices.cardreader import CardReader
    from congso.devices.pcscd import ensure_pcscd, vpcd_lock
    from congso.devices.virtualcard import VirtualCard

    with vpcd_lock():
        daemon = ensure_pcscd()
        try:
            got = threading.Event()
            reader = CardReader(reader="Virtual PCD 00 00", on_card=lambda uid: got.set(), debounce_s=0)
            reader.start()
            card = VirtualCard("04A1B2C3D4E5F6")
            placed, present = [], []
            for i in range(taps):
                got.clear()
                started = time.perf_counter()
                card.insert(f"04A1B2C3D4{i:04X}")  # returns once pcscd has powered the card
                powered = time.perf_counter()
                if not got.wait(5):
                    print(f"tap {i}: no callback within 5 s", file=sys.stderr)
                    continue
                done = time.perf_counter()
                placed.append((done - started) * 1000)
                present.append((done - powered) * 1000)
                card.remove()
                time.sleep(0.3)  # let the reader see the card gone
            reader.stop()

            # The bare pyscard round trip on the same reader, card already in.
            bare = []
            card.insert("04A1B2C3D4E5F6")
            time.sleep(0.5)
            target = next(r for r in readers() if "Virtual PCD 00 00" in str(r))
            for _ in range(taps):
                started = time.perf_counter()
                conn = target.createConnection()
                conn.connect()
                conn.transmit([0xFF, 0xCA, 0x00, 0x00, 0x00])
                conn.disconnect()
                conn.release()  # its own PC/SC context, before pcscd goes
                bare.append((time.perf_counter() - started) * 1000)
            card.close()
        finally:
            if daemon is not None:
                daemon.stop()
    print(f"Card: {len(present)} taps, ms")
    print(f"{'':<36} {'p50':>8} {'p99':>8}")
    for name, values in (
        ("placed -> callback (CardReader)", placed),
        ("present -> callback (CardReader)", present),
        ("bare connect + FF CA (pyscard)", bare),
    ):
        print(f"{name:<36} {statistics.median(values):>8.1f} {pct(values, 99):>8.1f}")
    print("placed: from the virtual card connecting to vpcd, so pcscd's own card polling is included;")
    print("present: from pcscd having powered the card. bare: a separate connect + read of a card left")
    print("on the reader, which pcscd powers down between reads (so it pays a power-up each time).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=50, help="runs per fingerprint command")
    ap.add_argument("--taps", type=int, default=30, help="card taps")
    ap.add_argument("--no-card", action="store_true", help="skip the card part (no pcscd/vpcd here)")
    args = ap.parse_args()
    bench_fingerprint(args.repeat)
    if not args.no_card:
        bench_card(args.taps)


if __name__ == "__main__":
    main()
