"""Timesheet benchmark: the month report (JSON, the official form's XLSX, CSV) for 60 and 600 staff.

    .venv/bin/python bench/timesheet.py [--staff 60,600] [--runs 5] [--month 2026-11]

For each office size, a fresh gateway database gets a month of an office
(``congso.tools.print_preview.fill_month``: four scans a working day, a few
late arrivals and early departures, leave of several kinds on a quarter of
the staff, a correction on a sixth of them). Then, median of ``--runs`` runs
each, measured side by side in the same run:

- the engine alone: ``timesheet.report`` with ``[workrules] scans = 2`` and
  with ``scans = 4`` (the same month, judged by session pairs);
- ``report`` + ``month_json`` (what the API and ``--format json`` answer);
- ``report`` + ``timesheet_form.write_csv``;
- ``report`` + ``timesheet_form.write_xlsx`` (what the console's download
  does; to memory), and the XLSX's size;
- ``month_json`` and ``write_xlsx`` alone, on one report made beforehand.

The variants take turns within each round (not five runs of one, then five
of the next), so a slow spell of a shared machine hits them all alike.

Targets (issue 17): the month XLSX for 60 staff <= 1 s, for 600 <= 5 s.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from congso.gateway import timesheet, timesheet_form
from congso.gateway.db import open_db
from congso.protocol.settings import load
from congso.tools.print_preview import TZ, fill_month

TARGETS_S = {60: 1.0, 600: 5.0}
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương", "Lý"]
GIVEN = ["Văn Hùng", "Thị Mai", "Thị Hoa", "Quốc Bảo", "Thị Thu Hương", "Đức Thắng", "Ngọc Ánh", "Minh Tuấn",
         "Thị Lan", "Văn Khánh", "Thị Yến", "Văn Phúc"]
DEPARTMENTS = ["Văn phòng - Thống kê", "Địa chính - Xây dựng", "Tư pháp - Hộ tịch", "Tài chính - Kế toán",
               "Văn hóa - Xã hội", "Công an xã", "Bộ phận Một cửa", "Quân sự"]


def people(n: int) -> list[tuple[str, str, str, str]]:
    return [(f"NV{i:04d}", f"{SURNAMES[i % 12]} {GIVEN[(i // 12) % 12]}", DEPARTMENTS[i % 8],
             "Công chức" if i % 5 else "") for i in range(1, n + 1)]


def interleaved(variants: dict, runs: int) -> dict[str, tuple[float, object]]:
    """Each variant once a round, ``runs`` rounds: a slow spell of the shared machine hits them all alike."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    results: dict[str, object] = {}
    for _ in range(runs):
        for name, fn in variants.items():
            started = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - started)
    return {name: (statistics.median(times[name]), results[name]) for name in variants}


def bench(n: int, month: str, runs: int, work: Path) -> dict:
    db = open_db(work / f"gateway-{n}.sqlite")
    started = time.perf_counter()
    made = fill_month(db, month, people(n))
    fill_s = time.perf_counter() - started
    first, last = timesheet.month_bounds(month)
    office = "UBND xã Kỳ Châu"
    rules = {scans: timesheet.WorkRules.from_settings(
        load(environ={"CONGSO_WORKRULES_SCANS": str(scans)}).workrules) for scans in (2, 4)}
    header = timesheet_form.form_header(load(environ={"CONGSO_TIMESHEET_HEAD": "Nguyễn Văn Hùng"}),
                                        signed_on=made["now"].date())
    now = made["now"]

    def report(scans=4):
        return timesheet.report(db, rules[scans], first, last, TZ, now=now)

    def as_json():
        return json.dumps(timesheet.month_json(report(), office), ensure_ascii=False)

    def as_csv():
        out = io.StringIO()
        timesheet_form.write_csv(report(), out)
        return out.getvalue()

    def as_xlsx():
        out = io.BytesIO()
        timesheet_form.write_xlsx(report(), out, header)
        return out.getvalue()

    rep = report()
    header_only = timesheet_form.FormHeader(office=office)

    def xlsx_of(prepared):
        out = io.BytesIO()
        timesheet_form.write_xlsx(prepared, out, header_only)
        return out.getvalue()

    figures = interleaved({
        "report2_s": lambda: report(2), "report4_s": lambda: report(4), "json_s": as_json, "csv_s": as_csv,
        "xlsx_s": as_xlsx,
        "json_only_s": lambda: json.dumps(timesheet.month_json(rep, office), ensure_ascii=False),
        "xlsx_only_s": lambda: xlsx_of(rep)}, runs)
    out = {"staff": n, "events": made["events"], "leave": made["leave"], "corrections": made["corrections"],
           "fill_s": fill_s, **{k: v[0] for k, v in figures.items()}}
    out["json_kb"] = len(figures["json_s"][1].encode()) / 1024
    out["xlsx_kb"] = len(figures["xlsx_s"][1]) / 1024
    # What the form holds, so a fast but empty month cannot pass.
    marks = [d.symbol() for days in rep.records.values() for d in days]
    out["cells"] = {s: marks.count(s) for s in sorted(set(marks)) if s}
    db.conn.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--staff", default="60,600", help="office sizes, comma-separated (default 60,600)")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure; the median is reported (default 5)")
    parser.add_argument("--month", default="2026-11", help="the month, YYYY-MM (default 2026-11)")
    a = parser.parse_args(argv)
    sizes = [int(s) for s in a.staff.split(",") if s.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="congso-bench-timesheet-") as work:
        for n in sizes:
            r = bench(n, a.month, a.runs, Path(work))
            results.append(r)
            print(f"{n} staff, {a.month}: {r['events']} scans, {r['leave']} leave, {r['corrections']} corrections "
                  f"(filled in {r['fill_s']:.1f} s); day cells {r['cells']}", flush=True)
    print(f"\nmedian of {a.runs} runs, seconds")
    print(f"{'staff':>6}{'report 2 scans':>16}{'report 4 scans':>16}{'+ JSON':>9}{'+ CSV':>9}{'+ XLSX':>9}"
          f"{'XLSX KiB':>10}  target (XLSX)")
    failed = False
    for r in results:
        target = TARGETS_S.get(r["staff"])
        verdict = "" if target is None else (f"<= {target:g} s " + ("met" if r["xlsx_s"] <= target else "NOT MET"))
        failed |= target is not None and r["xlsx_s"] > target
        print(f"{r['staff']:>6}{r['report2_s']:>16.3f}{r['report4_s']:>16.3f}{r['json_s']:>9.3f}{r['csv_s']:>9.3f}"
              f"{r['xlsx_s']:>9.3f}{r['xlsx_kb']:>10.0f}  {verdict}")
    print(f"\n{'staff':>6}{'month_json alone':>18}{'write_xlsx alone':>18}{'JSON KiB':>10}")
    for r in results:
        print(f"{r['staff']:>6}{r['json_only_s']:>18.3f}{r['xlsx_only_s']:>18.3f}{r['json_kb']:>10.0f}")
    for r in results:
        print(f"{r['staff']} staff: the XLSX writer takes {r['xlsx_only_s']:.3f} s of the "
              f"{r['xlsx_s']:.3f} s ({r['xlsx_only_s'] / r['json_only_s']:.1f}x month_json); "
              f"4 scans a day cost {r['report4_s'] / r['report2_s']:.2f}x 2 scans in the engine")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
