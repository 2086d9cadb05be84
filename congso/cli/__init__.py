"""The ``congso`` command: a thin shell over the library.

Every command reads the same settings (``--config`` or ``CONGSO_CONFIG``,
then ``CONGSO_<SECTION>_<KEY>`` variables); see ``docs/settings.md``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from .. import __version__
from ..protocol import settings as settings_mod

log = logging.getLogger("congso")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="CONGSO_CONFIG",
    help="TOML settings file (default: none; built-in defaults plus CONGSO_* variables).",
)
@click.version_option(__version__, prog_name="congso")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """congso: smart-office firmware for a commune People's Committee.

    Doors (fingerprint and card), waiting-hall TVs and rating kiosks report
    over MQTT to one gateway that keeps the office's data in SQLite.

    \b
    Quick start on one machine:
      make demo                      the whole office on one machine
    On a Raspberry Pi:
      congso install ROLE            gateway, attendance, signage or rating
      congso selftest --role ROLE    check this node's devices, with fixes
    At the gateway:
      congso staff|card|enroll|holiday        who may enter, and how
      congso dossier|calendar|announce        what the hall TVs show
      congso desk open|close                  tie the next vote to an officer
      congso report attendance|ratings        timesheets, satisfaction (CSV, XLSX)
      congso nodes; congso node screenshot tv-1    look after the devices
    """
    try:
        ctx.obj = settings_mod.load(config_path)
    except settings_mod.SettingsError as e:
        raise click.UsageError(str(e)) from None
    _setup_logging(ctx.obj.log.level)
    for name in ctx.obj.ignored_env:
        log.warning("ignoring %s: no such setting (see Settings in the README)", name)


# -- gateway ------------------------------------------------------------------
@main.group()
def gateway() -> None:
    """The gateway: stores every event and tells the nodes what it has."""


@gateway.command("run")
@click.pass_obj
def gateway_run(settings) -> None:
    """Run the gateway until SIGTERM or Ctrl-C.

    \b
    Connects as user 'gateway' (CONGSO_MQTT_USERNAME / CONGSO_MQTT_PASSWORD),
    keeps its database in $CONGSO_DATA_DIR/gateway.sqlite and acks every
    event after it is committed.
    """
    from ..gateway.service import Gateway

    gw = Gateway(settings)
    gw.install_signal_handlers()
    gw.run()


# -- events -------------------------------------------------------------------
@main.group()
def events() -> None:
    """Stored attendance and rating events."""


@events.command("export")
@click.option("--kind", type=click.Choice(["attendance", "rating"]), help="Only this kind (default: both).")
@click.option("--from", "day_from", metavar="YYYY-MM-DD", help="First day, inclusive, in the office's time zone.")
@click.option("--to", "day_to", metavar="YYYY-MM-DD", help="Last day, inclusive.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True, help="One JSON object per line, or CSV with a header.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of standard output.")
@click.pass_obj
def events_export(settings, kind, day_from, day_to, fmt, output) -> None:
    """Write every stored event, one per line or row, with its event_id.

    \b
    Examples:
      congso events export --format csv --from 2026-11-01 --to 2026-11-30 -o nov.csv
      congso events export --kind rating --format jsonl | jq .level
    """
    from ..gateway import export
    from ..gateway.db import open_readonly
    from ..gateway.service import db_path

    try:
        day_from = export.parse_day(day_from, "--from")
        day_to = export.parse_day(day_to, "--to")
        db = open_readonly(db_path(settings))
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    rows = export.iter_events(db, kind, day_from, day_to)
    out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        n = export.write_jsonl(rows, out) if fmt == "jsonl" else export.write_csv(rows, out, kind)
    finally:
        if output:
            out.close()
    click.echo(f"exported {n} events", err=True)


# -- broker -------------------------------------------------------------------
@main.group()
def broker() -> None:
    """Mosquitto for the office: users, ACL and configuration."""


@broker.command("config")
@click.option("--site", required=True, help="Office id, e.g. ky-chau (a topic level: a-z, 0-9, '-').")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--nodes", required=True, help="Comma-separated node ids, e.g. door-1,tv-1,kiosk-1.")
@click.option("--port", default=1883, show_default=True, type=int, help="Plain MQTT listener port.")
@click.option("--bind", default="", help="Listen on this address only (default: all; 127.0.0.1 for a test).")
@click.option("--user", "run_as", default="mosquitto", show_default=True, help="User Mosquitto drops to when started as root.")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="Server certificate for the TLS listener on 8883.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="Its private key.")
@click.option("--tls-ca", type=click.Path(dir_okay=False, exists=True), help="The office CA that signed it.")
@click.option("--tls-port", default=8883, show_default=True, type=int, help="TLS listener port.")
@click.option("--bridge-address", help="Forward congso/SITE/# to the province's broker at HOST:PORT.")
@click.option("--bridge-user", help="This office's user there (default: the site id).")
@click.option("--bridge-password", help="Its password (from `congso broker central` at the province).")
@click.option("--bridge-cafile", type=click.Path(dir_okay=False, exists=True), help="CA of the province broker's TLS listener.")
def broker_config(site, out_dir, nodes, port, bind, run_as, tls_cert, tls_key, tls_ca, tls_port,
                  bridge_address, bridge_user, bridge_password, bridge_cafile) -> None:
    """Write mosquitto.conf, passwd, acl and credentials.json into OUT.

    \b
    Each node gets its own user (its node id) and may write only
    congso/SITE/node/<its id>/#; the gateway may read and write the site.
    Re-running with more nodes keeps the existing passwords.
    Start the broker with:  mosquitto -c OUT/mosquitto.conf

    \b
    For a province: --bridge-address central.example:1883 --bridge-password P
    makes this broker forward congso/SITE/# to the central broker (out only,
    queued while the link is down).
    """
    from ..ops.broker import Bridge, BrokerConfigError, TlsFiles, generate

    bridge = None
    if bridge_address:
        if not bridge_password:
            raise click.UsageError("--bridge-address needs --bridge-password")
        bridge = Bridge(bridge_address, bridge_user or site, bridge_password, str(Path(bridge_cafile).resolve()) if bridge_cafile else "")

    tls_given = [tls_cert, tls_key, tls_ca]
    if any(tls_given) and not all(tls_given):
        raise click.UsageError("--tls-cert, --tls-key and --tls-ca go together")
    tls = TlsFiles(*(str(Path(p).resolve()) for p in tls_given)) if all(tls_given) else None
    node_ids = [n.strip() for n in nodes.split(",") if n.strip()]
    try:
        creds = generate(out_dir, site, node_ids, port=port, bind=bind, run_as=run_as, tls=tls, tls_port=tls_port, bridge=bridge)
    except (BrokerConfigError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    out = Path(out_dir)
    click.echo(f"wrote {out / 'mosquitto.conf'}, passwd, acl and credentials.json (users: {', '.join(creds)})")


@broker.command("central")
@click.option("--sites", required=True, help="Comma-separated office ids, e.g. ky-chau,ky-tan.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--port", default=1883, show_default=True, type=int)
@click.option("--bind", default="", help="Listen on this address only.")
@click.option("--user", "run_as", default="mosquitto", show_default=True, help="User Mosquitto drops to when started as root.")
def broker_central(sites, out_dir, port, bind, run_as) -> None:
    """The province's broker: one user per office (its site id) for its bridge,
    and 'province' for the roll-up; passwords in OUT/credentials.json.

    \b
    Then on each office:  congso broker config ... --bridge-address HOST:PORT --bridge-password <its password>
    and at the province:  congso province --host HOST --user province --password <...>
    """
    from ..ops.broker import BrokerConfigError, generate_central

    try:
        creds = generate_central(out_dir, [s.strip() for s in sites.split(",") if s.strip()], port=port, bind=bind, run_as=run_as)
    except (BrokerConfigError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {Path(out_dir) / 'mosquitto.conf'}, passwd, acl and credentials.json (users: {', '.join(creds)})")


@main.command("province")
@click.option("--host", help="The province broker (default: [mqtt] host).")
@click.option("--port", type=int, help="Its port (default: [mqtt] port).")
@click.option("--user", "username", default="province", show_default=True)
@click.option("--password", help="The 'province' user's password (default: [mqtt] password).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per office instead of a table.")
@click.pass_obj
def province(settings, host, port, username, password, as_json) -> None:
    """Attendance and satisfaction of every office bridged to the province broker.

    \b
    Read from each office's retained state/presence and state/ratings (figures
    only, no names) and its nodes' statuses; a TOTAL row sums them.
    """
    from ..ops.province import as_json_lines, collect, rollup

    try:
        found = collect(host or settings.mqtt.host, port or settings.mqtt.port, username,
                        password if password is not None else settings.mqtt.password, cafile=settings.mqtt.tls_ca)
    except ConnectionError as e:
        raise click.ClickException(str(e)) from None
    rows = rollup(found)
    if as_json:
        click.echo(as_json_lines(rows), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="province roll-up")
    for column in ("office", "date", "staff", "checked in", "present %", "unsynced", "votes today", "votes month", "satisfied % month", "nodes online"):
        table.add_column(column, justify="left" if column in ("office", "date") else "right")
    for r in rows:
        fmt = lambda v: "" if v is None else f"{v:g}"  # noqa: E731
        table.add_row(r.site, r.date or "", str(r.staff_active), str(r.checked_in), fmt(r.present_pct), str(r.unsynced_events),
                      str(r.votes_today), str(r.votes_month), fmt(r.satisfied_pct_month), f"{r.nodes_online}/{r.nodes_total}")
    Console(width=max(Console().width, 140)).print(table)


@broker.command("check-db")
@click.option("--config", "conf", required=True, type=click.Path(dir_okay=False, exists=True), help="The mosquitto.conf whose persistence file to check.")
def broker_check_db(conf) -> None:
    """Move a corrupt mosquitto.db aside so that Mosquitto starts (run before it).

    The installed mosquitto.service runs this as ExecStartPre. Exit 0 either
    way; what was moved is printed (and logged by journald).
    """
    from ..ops.broker import check_db

    done = check_db(conf)
    click.echo(done or "persistence file ok")


# -- simulate -------------------------------------------------------------------
@main.group()
def simulate() -> None:
    """Simulated nodes for demos, tests and benchmarks."""


@simulate.command("node")
@click.option("--kind", type=click.Choice(["attendance", "rating"]), default="attendance", show_default=True)
@click.option("--count", type=click.IntRange(min=0), help="Events to make (default: keep going until stopped; 0: none, only deliver what the outbox holds).")
@click.option("--rate", default=1.0, show_default=True, help="Events per second (0: as fast as possible).")
@click.option("--exit-when-drained", is_flag=True, help="Exit once COUNT events are made and all acked.")
@click.option("--seed", type=int, help="Random seed, for repeatable runs.")
@click.pass_obj
def simulate_node(settings, kind, count, rate, exit_when_drained, seed) -> None:
    """Run a node (id from CONGSO_NODE_ID) that makes events like a busy door or kiosk.

    Prints 'committed <seq> <event_id>' after each event is in the outbox.
    """
    from ..tools.simulate import run_cli

    try:
        sys.exit(run_cli(settings, kind, count, rate, exit_when_drained, seed))
    except ValueError as e:
        raise click.ClickException(str(e)) from None


# -- fingerprint ----------------------------------------------------------------
@main.group()
@click.option("--port", help="Serial port or pyserial URL (default: [fingerprint] port, CONGSO_FINGERPRINT_PORT).")
@click.pass_context
def fingerprint(ctx: click.Context, port: str | None) -> None:
    """Work on the fingerprint module directly: slots, templates, a test finger.

    \b
    Stop the door first (systemctl stop congso-attendance): the module's port
    is opened exclusively. Enrolling for a staff member goes through the
    gateway (congso enroll), which also records the slot.
    \b
    Examples:
      congso fingerprint info
      congso fingerprint slots
      congso fingerprint export 12 an.tpl      then on the other door:
      congso fingerprint import 12 an.tpl
    """
    ctx.obj = (ctx.obj, port)


def _module(obj):
    from ..devices.fingerprint import FingerprintError, FingerprintModule

    settings, port = obj
    module = FingerprintModule.from_settings(settings, port=port)
    try:
        module.open()
    except FingerprintError as e:
        raise click.ClickException(f"{e} (congso selftest --role attendance tells how to fix it)") from None
    return module


def _fingerprint_call(obj, call):
    from ..devices.fingerprint import FingerprintError

    module = _module(obj)
    try:
        return call(module)
    except FingerprintError as e:
        raise click.ClickException(str(e)) from None
    finally:
        module.close()


@fingerprint.command("info")
@click.pass_obj
def fingerprint_info(obj) -> None:
    """The module's parameters and how full its library is."""
    def info(m):
        p, used = m.params, m.template_count()
        return (f"port {m.port}\nlibrary {p.library_size} slots, {used} used\npacket size {p.packet_size} bytes\n"
                f"baud {p.baud}\nsecurity level {p.security_level}\naddress {p.address:08X}")
    click.echo(_fingerprint_call(obj, info))


@fingerprint.command("slots")
@click.pass_obj
def fingerprint_slots(obj) -> None:
    """The slots that hold a template, one per line."""
    for slot in sorted(_fingerprint_call(obj, lambda m: m.used_slots())):
        click.echo(slot)


@fingerprint.command("identify")
@click.option("--wait", default=10.0, show_default=True, help="Seconds to wait for a finger.")
@click.pass_obj
def fingerprint_identify(obj, wait) -> None:
    """Wait for a finger and say which slot it matches."""
    click.echo(f"place a finger on the sensor (waiting {wait:g} s)", err=True)
    match = _fingerprint_call(obj, lambda m: m.identify(wait_s=wait))
    if match is None:
        raise click.ClickException("finger not in the library")
    click.echo(f"slot {match.slot} (score {match.score})")


@fingerprint.command("delete")
@click.argument("slot", type=click.IntRange(min=0))
@click.pass_obj
def fingerprint_delete(obj, slot) -> None:
    """Delete the template in SLOT."""
    _fingerprint_call(obj, lambda m: m.delete(slot))
    click.echo(f"slot {slot} deleted")


@fingerprint.command("empty")
@click.confirmation_option(prompt="Delete every template in the module?")
@click.pass_obj
def fingerprint_empty(obj) -> None:
    """Delete every template in the module."""
    _fingerprint_call(obj, lambda m: m.empty())
    click.echo("library emptied")


@fingerprint.command("export")
@click.argument("slot", type=click.IntRange(min=0))
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.pass_obj
def fingerprint_export(obj, slot, file) -> None:
    """Save the template in SLOT to FILE (to carry a finger to another door)."""
    data = _fingerprint_call(obj, lambda m: m.export_template(slot))
    Path(file).write_bytes(data)
    click.echo(f"slot {slot}: {len(data)} bytes written to {file}")


@fingerprint.command("import")
@click.argument("slot", type=click.IntRange(min=0))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def fingerprint_import(obj, slot, file) -> None:
    """Store the template in FILE (from `export`) into SLOT."""
    data = Path(file).read_bytes()
    _fingerprint_call(obj, lambda m: m.import_template(slot, data))
    click.echo(f"{file} stored in slot {slot}")


# -- emulate --------------------------------------------------------------------
@main.group()
def emulate() -> None:
    """Simulated devices, to try a node on a machine without the hardware."""


@emulate.command("fingerprint")
@click.option("--link", type=click.Path(dir_okay=False), help="Also make this symlink to the pseudo-terminal (a stable port path).")
@click.option("--library", "library_size", default=200, show_default=True, help="Library slots (R503: 200; AS608: 300 or 1000).")
@click.option("--timing", default=1.0, show_default=True, help="1: as slow as a real module; 0: answer at once.")
@click.option("--enroll", "enrolled", multiple=True, metavar="NAME=SLOT", help="A finger already in the library (repeatable).")
@click.pass_obj
def emulate_fingerprint(settings, link, library_size, timing, enrolled) -> None:
    """A fingerprint module on a pseudo-terminal, driven from stdin.

    Prints 'port <path>', then reads commands (type help): place NAME, lift,
    tap NAME, enroll NAME SLOT, list, noise, corrupt, silent on|off. Point a
    door at it with CONGSO_FINGERPRINT_PORT=<path> (or the --link path).
    """
    from ..devices.fingerprint.emulator import FingerprintEmulator, console

    emu = FingerprintEmulator(library_size=library_size, timing=timing,
                              password=settings.fingerprint.password, address=settings.fingerprint.address)
    for item in enrolled:
        name, _, slot = item.partition("=")
        if not name or not slot.isdigit() or int(slot) >= library_size:
            raise click.BadParameter(f"{item!r}: expected NAME=SLOT with SLOT below {library_size}", param_hint="--enroll")
        emu.enroll_directly(name, int(slot))
    port = emu.start()
    link_path = Path(link) if link else None
    try:
        if link_path:
            link_path.unlink(missing_ok=True)
            link_path.symlink_to(port)
        click.echo(f"port {port}" + (f" (also {link_path})" if link_path else ""))
        console(emu, sys.stdin, lambda text: click.echo(text))
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        if link_path and link_path.is_symlink():
            link_path.unlink()


@emulate.command("card")
@click.argument("uid")
@click.option("--hold", default=0.5, show_default=True, help="Seconds the card stays on the reader.")
@click.option("--vpcd-port", default=35963, show_default=True, help="The vpcd driver's port (pcscd's virtual reader).")
def emulate_card(uid, hold, vpcd_port) -> None:
    """Tap a virtual card with UID (hex) on pcscd's vpcd virtual reader.

    Needs pcscd running with the vsmartcard-vpcd driver; the door then reads
    the card as from a real reader.
    """
    from ..devices.virtualcard import tap

    try:
        tap(uid, port=vpcd_port, hold_s=hold)
    except (OSError, ValueError, TimeoutError) as e:
        raise click.ClickException(f"cannot tap the card: {e} (is pcscd running with vsmartcard-vpcd?)") from None
    click.echo(f"card {uid.upper()} tapped")


# -- selftest -------------------------------------------------------------------
@main.command()
@click.option("--role", type=click.Choice(["attendance", "signage", "rating"]), help="Check only the devices this role uses (default: every device).")
@click.pass_obj
def selftest(settings, role) -> None:
    """Check each configured device for real and say how to fix what fails.

    \b
    attendance: fingerprint module (handshake, parameters), serial console,
                pcscd and the card reader, pn533_usb not loaded, GPIO pins
    signage:    display (driver, size) and a font with Vietnamese coverage
    rating:     display, font and the button pins

    Exit code 0 when everything passed, 1 otherwise. A device set to
    backend "none" or a pin left empty counts as not fitted, not as failed.
    """
    from rich.console import Console
    from rich.table import Table

    from ..devices import selftest as selftest_mod

    results = selftest_mod.run(settings, role)
    table = Table(title=f"congso selftest{f' ({role})' if role else ''}", show_lines=True)
    for column in ("check", "result", "found", "fix"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r.name, "[green]ok[/]" if r.ok else "[red]FAIL[/]", r.detail, r.fix)
    console = Console(width=max(Console().width, 120))
    console.print(table)
    failed = [r for r in results if not r.ok]
    console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


# -- demo -----------------------------------------------------------------------
@main.command()
@click.option("--out", "out_dir", default="demo-out", show_default=True, type=click.Path(file_okay=False), help="Where the demo keeps its broker config, databases and logs.")
@click.option("--duration", default=0.0, help="Stop after this many seconds (0: run until Ctrl-C).")
@click.option("--pace", default=2.5, show_default=True, help="Seconds between two scenes of the working morning.")
@click.pass_obj
def demo(settings, out_dir, duration, pace) -> None:
    """The whole office on one machine, playing a working morning, with a live view.

    \b
    A broker with generated credentials; the gateway with a seeded commune
    (staff, cards, fingers, this week's calendar, dossiers, announcements);
    the door on the fingerprint-module emulator and, where pcscd and vpcd
    work, the virtual card reader; the hall TV; the rating kiosk. Staff
    check in, dossiers move, citizens rate. Without a display the screens
    are saved as OUT/tv-1/screen.png and OUT/kiosk-1/screen.png.
    Ctrl-C stops everything cleanly.
    """
    from ..tools.demo import run_demo

    sys.exit(run_demo(settings, Path(out_dir), duration, pace))


# -- reports --------------------------------------------------------------------
@main.group()
def report() -> None:
    """Reports for the head of office: timesheets and satisfaction, as CSV or XLSX."""


# -- the roles' commands ------------------------------------------------------------
# Each role keeps its commands next to its code; they register here.
def _register_roles() -> None:
    from . import attendance, ops, rating, signage

    for module in (attendance, signage, rating, ops):
        module.register(main, report)


_register_roles()

if __name__ == "__main__":
    main()
