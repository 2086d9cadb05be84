"""The devices on this machine: ``congso fingerprint``, ``congso emulate``, ``congso selftest``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .output import TABLE, output_options, show


# -- fingerprint ----------------------------------------------------------------
@click.group()
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
    """The module's parameters and how full its library is.

    \b
    Example:
      congso fingerprint --port /dev/ttyAMA0 info
    """
    def info(m):
        p, used = m.params, m.template_count()
        return (f"port {m.port}\nlibrary {p.library_size} slots, {used} used\npacket size {p.packet_size} bytes\n"
                f"baud {p.baud}\nsecurity level {p.security_level}\naddress {p.address:08X}")
    click.echo(_fingerprint_call(obj, info))


@fingerprint.command("slots")
@click.pass_obj
def fingerprint_slots(obj) -> None:
    """The slots that hold a template, one per line.

    \b
    Example:
      congso fingerprint slots
    """
    for slot in sorted(_fingerprint_call(obj, lambda m: m.used_slots())):
        click.echo(slot)


@fingerprint.command("identify")
@click.option("--wait", default=10.0, show_default=True, help="Seconds to wait for a finger.")
@click.pass_obj
def fingerprint_identify(obj, wait) -> None:
    """Wait for a finger and say which slot it matches.

    \b
    Example:
      congso fingerprint identify --wait 20
    """
    click.echo(f"place a finger on the sensor (waiting {wait:g} s)", err=True)
    match = _fingerprint_call(obj, lambda m: m.identify(wait_s=wait))
    if match is None:
        raise click.ClickException("finger not in the library")
    click.echo(f"slot {match.slot} (score {match.score})")


@fingerprint.command("delete")
@click.argument("slot", type=click.IntRange(min=0))
@click.pass_obj
def fingerprint_delete(obj, slot) -> None:
    """Delete the template in SLOT.

    \b
    Example:
      congso fingerprint delete 12
    """
    _fingerprint_call(obj, lambda m: m.delete(slot))
    click.echo(f"slot {slot} deleted")


@fingerprint.command("empty")
@click.confirmation_option(prompt="Delete every template in the module?")
@click.pass_obj
def fingerprint_empty(obj) -> None:
    """Delete every template in the module.

    \b
    Example:
      congso fingerprint empty --yes
    """
    _fingerprint_call(obj, lambda m: m.empty())
    click.echo("library emptied")


@fingerprint.command("export")
@click.argument("slot", type=click.IntRange(min=0))
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.pass_obj
def fingerprint_export(obj, slot, file) -> None:
    """Save the template in SLOT to FILE (to carry a finger to another door).

    \b
    Example:
      congso fingerprint export 12 an.tpl
    """
    data = _fingerprint_call(obj, lambda m: m.export_template(slot))
    Path(file).write_bytes(data)
    click.echo(f"slot {slot}: {len(data)} bytes written to {file}")


@fingerprint.command("import")
@click.argument("slot", type=click.IntRange(min=0))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def fingerprint_import(obj, slot, file) -> None:
    """Store the template in FILE (from `export`) into SLOT.

    \b
    Example:
      congso fingerprint import 12 an.tpl
    """
    data = Path(file).read_bytes()
    _fingerprint_call(obj, lambda m: m.import_template(slot, data))
    click.echo(f"{file} stored in slot {slot}")


# -- emulate --------------------------------------------------------------------
@click.group()
def emulate() -> None:
    """Simulated devices, to try a node on a machine without the hardware.

    \b
    Examples:
      congso emulate fingerprint --link /tmp/fp --enroll NV001=1
      congso emulate card 04A1B2C3
    """


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

    \b
    Examples:
      congso emulate fingerprint --link /tmp/fp --enroll NV001=1 --timing 0
      then: CONGSO_FINGERPRINT_PORT=/tmp/fp congso attendance run
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

    \b
    Example:
      congso emulate card 04A1B2C3 --hold 1
    """
    from ..devices.virtualcard import tap

    try:
        tap(uid, port=vpcd_port, hold_s=hold)
    except (OSError, ValueError, TimeoutError) as e:
        raise click.ClickException(f"cannot tap the card: {e} (is pcscd running with vsmartcard-vpcd?)") from None
    click.echo(f"card {uid.upper()} tapped")


# -- selftest -------------------------------------------------------------------
@click.command()
@click.option("--role", type=click.Choice(["attendance", "signage", "rating"]), help="Check only the devices this role uses (default: every device).")
@output_options
@click.pass_obj
def selftest(settings, role, fmt) -> None:
    """Check each configured device for real and say how to fix what fails.

    \b
    attendance: fingerprint module (handshake, parameters), serial console,
                pcscd and the card reader, pn533_usb not loaded, GPIO pins
    signage:    display (driver, size) and a font with Vietnamese coverage
    rating:     display, font and the button pins

    Exit code 0 when everything passed, 1 otherwise. A device set to
    backend "none" or a pin left empty counts as not fitted, not as failed.

    \b
    Examples:
      congso selftest --role attendance
      congso selftest --json | jq 'select(.ok | not)'
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..devices import selftest as selftest_mod

    results = selftest_mod.run(settings, role)
    failed = [r for r in results if not r.ok]
    if fmt != TABLE:
        show(fmt, "", ["check", "ok", "found", "fix"], [[r.name, r.ok, r.detail, r.fix] for r in results],
             records=[{"check": r.name, "ok": r.ok, "found": r.detail, "fix": r.fix} for r in results])
        sys.exit(1 if failed else 0)
    table = Table(title=f"congso selftest{f' ({role})' if role else ''}", show_lines=True)
    for column in ("check", "result", "found", "fix"):
        table.add_column(column, overflow="fold")
    for r in results:
        # escape: the text names settings as "[section] key", which rich would read as markup.
        table.add_row(escape(r.name), "[green]ok[/]" if r.ok else "[red]FAIL[/]", escape(r.detail), escape(r.fix))
    console = Console(width=max(Console().width, 120))
    console.print(table)
    failed = [r for r in results if not r.ok]
    console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


def register(main: click.Group, report: click.Group) -> None:
    main.add_command(fingerprint)
    main.add_command(emulate)
    main.add_command(selftest)
