"""The technician's commands over SSH: nodes, commands to a node, a node's own status."""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime
from pathlib import Path

import click

from .common import gateway_db




def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


@click.command("nodes")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per node instead of a table.")
@click.pass_obj
def nodes(settings, as_json) -> None:
    """Every node the gateway has heard of: online, last seen, version, outbox,
    clock, devices, last frame age, and any alert.

    \b
    A node is online when its status says so and it was heard from within
    three heartbeats. An alert names what is wrong: offline, silent, or a
    device that is not ok (also logged by the gateway when it starts and ends).
    """
    from ..gateway import registry
    from ..protocol import clock

    db = gateway_db(settings, readonly=True)
    views = registry.list_nodes(db, clock.now(settings.site.timezone), registry._silent_after(settings))
    if as_json:
        for v in views:
            click.echo(json.dumps(v.__dict__, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"nodes of {settings.site.id}")
    for column in ("node", "kind", "online", "last seen", "version", "outbox", "clock", "devices", "frame", "alert"):
        table.add_column(column, overflow="fold")
    for v in views:
        devices = " ".join(f"{k}:{'[green]ok[/]' if s == 'ok' else f'[red]{s}[/]'}" for k, s in sorted(v.devices.items()))
        table.add_row(
            v.node_id, v.kind or "?", "[green]yes[/]" if v.online else "[red]no[/]", _ago(v.last_seen_s),
            v.version or "", "" if v.outbox is None else str(v.outbox),
            {True: "synced", False: "[yellow]NOT synced[/]", None: ""}[v.clock_synced], devices,
            "" if v.last_frame_age_s is None else f"{v.last_frame_age_s:.1f} s",
            f"[red]{v.alert}[/] (since {v.alert_since})" if v.alert else "",
        )
    Console(width=max(Console().width, 140)).print(table)


@click.group("node")
def node() -> None:
    """Send a command to one node through the gateway and show its answer.

    \b
    The gateway must be running; the node answers when it is online (a
    command waits in the broker for a node that is briefly away).
    Examples:
      congso node identify door-1             blink and beep to find it
      congso node screenshot tv-1 -o tv.png   what the TV shows now
      congso node reload kiosk-1
    """


def _send(settings, node_id: str, cmd: str, args: dict, timeout: float) -> dict:
    from ..gateway import commands

    db = gateway_db(settings)
    try:
        cmd_id = commands.queue(db, node_id, cmd, args, tz=settings.site.timezone)
        return commands.wait_reply(db, cmd_id, timeout)
    except commands.CommandError as e:
        raise click.ClickException(f"{cmd} on {node_id}: {e}") from None
    except ValueError as e:
        raise click.ClickException(str(e)) from None


@node.command("identify")
@click.argument("node_id")
@click.option("--timeout", default=15.0, show_default=True, help="Seconds to wait for the answer.")
@click.pass_obj
def node_identify(settings, node_id, timeout) -> None:
    """Make NODE blink and beep (or flash its screen) so you can find it."""
    result = _send(settings, node_id, "identify", {}, timeout)
    click.echo(f"{node_id} identified itself {json.dumps(result, ensure_ascii=False)}")


@node.command("reload")
@click.argument("node_id")
@click.option("--timeout", default=15.0, show_default=True)
@click.pass_obj
def node_reload(settings, node_id, timeout) -> None:
    """Ask NODE to reload its settings and state."""
    result = _send(settings, node_id, "reload", {}, timeout)
    click.echo(f"{node_id} reloaded {json.dumps(result, ensure_ascii=False)}")


@node.command("screenshot")
@click.argument("node_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="PNG file (default: NODE-<time>.png).")
@click.option("--max-width", type=int, help="Scale the picture down to this width.")
@click.option("--timeout", default=20.0, show_default=True)
@click.pass_obj
def node_screenshot(settings, node_id, output, max_width, timeout) -> None:
    """Save what the screen of NODE (a TV or a kiosk) shows now as a PNG."""
    args = {"max_width": max_width} if max_width else {}
    result = _send(settings, node_id, "screenshot", args, timeout)
    data = result.get("png_base64")
    if not isinstance(data, str):
        raise click.ClickException(f"{node_id} answered without a picture: {sorted(result)}")
    path = Path(output or f"{node_id}-{datetime.now():%Y%m%d-%H%M%S}.png")
    path.write_bytes(base64.b64decode(data))
    click.echo(f"saved {path}")


@node.command("cmd")
@click.argument("node_id")
@click.argument("cmd")
@click.option("--args", "args_json", default="{}", help='Arguments as JSON, e.g. \'{"on": false}\'.')
@click.option("--timeout", default=30.0, show_default=True)
@click.pass_obj
def node_cmd(settings, node_id, cmd, args_json, timeout) -> None:
    """Send any command of the contract (e.g. display_power) and print the result as JSON."""
    try:
        args = json.loads(args_json)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--args") from None
    if not isinstance(args, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--args")
    click.echo(json.dumps(_send(settings, node_id, cmd, args, timeout), ensure_ascii=False))


@click.command("status")
@click.pass_obj
def status(settings) -> None:
    """This node's own view (run it on the node): connection, outbox, clock, devices.

    \b
    Read from <data dir>/status.json, which the running node rewrites every
    heartbeat, connected or not, and from its outbox. A stale file means the
    node program is not running (systemctl status congso-<role>).
    """
    import time

    from ..protocol import outbox
    from ..protocol.node import status_path

    path = status_path(settings)
    try:
        view = json.loads(path.read_text(encoding="utf-8"))
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        raise click.ClickException(f"no {path}: the node has not run with this data dir (CONGSO_DATA_DIR)") from None
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot read {path}: {e}") from None
    interval = float(settings.health.interval_s)
    running = age <= 3 * interval + 5
    lines = [
        f"node      {view.get('node_id')} ({view.get('kind')}), pid {view.get('pid')}",
        f"running   {'yes' if running else 'NO'} (status written {age:.0f} s ago)",
        f"broker    {view.get('broker')}: {'connected' if view.get('connected') else 'NOT connected'}",
        f"outbox    {view.get('outbox')} unacked" + (f", oldest {view['outbox_oldest_s']:.0f} s" if view.get("outbox_oldest_s") else ""),
        f"clock     {'synchronised' if view.get('clock_synced') else 'NOT synchronised (check chrony / timedatectl)'}",
        "devices   " + (", ".join(f"{k} {v}" for k, v in sorted((view.get("devices") or {}).items())) or "none"),
    ]
    if view.get("last_frame_age_s") is not None:
        lines.append(f"screen    last frame {view['last_frame_age_s']:.1f} s ago")
    click.echo("\n".join(lines))
    pending = outbox.peek(settings.data_dir / "outbox.sqlite", limit=5) if (settings.data_dir / "outbox.sqlite").exists() else []
    for ev in pending:
        what = ev.get("method") or ev.get("level") or ""
        click.echo(f"  unacked #{ev.get('seq')} {ev.get('ts')} {what} {ev.get('event_id')}")
    if not running:
        sys.exit(1)


def _install_options(fn):
    for option in reversed([
        click.argument("role", type=click.Choice(["gateway", "attendance", "signage", "rating"])),
        click.option("--root", default="/", show_default=True, type=click.Path(file_okay=False), help="Install into this directory instead of the live system (for testing an image)."),
    ]):
        fn = option(fn)
    return fn


@click.command("install")
@_install_options
@click.option("--site", default="ky-chau", show_default=True, help="Office id.")
@click.option("--site-name", default="UBND xã Kỳ Châu", show_default=True, help="Office name shown on the screens.")
@click.option("--node-id", default="", help="This node's id (default door-1, tv-1 or kiosk-1).")
@click.option("--gateway-host", default="gateway.local", show_default=True, help="Where a node finds the broker and its time.")
@click.option("--nodes", default="door-1,tv-1,kiosk-1", show_default=True, help="Gateway: the office's node ids (broker users).")
@click.option("--mqtt-password", default="", help="A node's broker password (from the gateway's /etc/congso/broker/credentials.json).")
@click.option("--lan", default="", help="Gateway: the LAN allowed to take time from chrony, e.g. 192.168.1.0/24 (default: any).")
@click.option("--no-packages", is_flag=True, help="Do not run apt-get.")
@click.option("--no-venv", is_flag=True, help="Do not (re)install the virtualenv in /opt/congso/venv.")
@click.option("--pip-arg", "pip_args", multiple=True, help="Extra pip argument (repeatable), e.g. --pip-arg=--no-index.")
@click.option("--source", type=click.Path(file_okay=False, exists=True), help="The congso source tree (default: the one this congso runs from).")
def install(role, root, source, site, site_name, node_id, gateway_host, nodes, mqtt_password, lan, no_packages, no_venv, pip_args) -> None:
    """Install ROLE on this Raspberry Pi (bookworm): packages, user, venv, config, unit.

    
    Safe to run again: what is already right is left alone, and an existing
    /etc/congso/congso.toml is never overwritten. Needs root.
    Examples:
      sudo congso install gateway --nodes door-1,tv-1,kiosk-1 --lan 192.168.1.0/24
      sudo congso install attendance --node-id door-1 --gateway-host 192.168.1.10 --mqtt-password ...
      congso install signage --root /tmp/image --no-packages      (try it in a directory)
    """
    from ..ops.install import Installer, InstallError, Options

    options = Options(role=role, root=Path(root), site=site, site_name=site_name, node_id=node_id,
                      gateway_host=gateway_host, nodes=[n.strip() for n in nodes.split(",") if n.strip()],
                      mqtt_password=mqtt_password, lan=lan, packages=not no_packages, venv=not no_venv,
                      pip_args=list(pip_args), **({"source": Path(source).resolve()} if source else {}))
    try:
        result = Installer(options).install()
    except InstallError as e:
        raise click.ClickException(str(e)) from None
    for item in result.changed:
        click.echo(f"changed  {item}")
    for item in result.kept:
        click.echo(f"ok       {item}")
    for item in result.skipped:
        click.echo(f"skipped  {item}")
    click.echo(f"congso-{role} installed" + ("" if root == "/" else f" into {root}"))


@click.command("uninstall")
@_install_options
@click.option("--purge", is_flag=True, help="Also remove /etc/congso, /var/lib/congso and /opt/congso.")
@click.option("--source", type=click.Path(file_okay=False, exists=True), help="The congso source tree.")
def uninstall(role, root, purge, source) -> None:
    """Remove what `congso install ROLE` added; the config and data stay unless --purge."""
    from ..ops.install import Installer, InstallError, Options

    try:
        installer = Installer(Options(role=role, root=Path(root), **({"source": Path(source).resolve()} if source else {})))
    except InstallError as e:
        raise click.ClickException(str(e)) from None
    result = installer.uninstall(purge=purge)
    for item in result.changed:
        click.echo(item)
    if result.kept:
        click.echo("kept: " + ", ".join(result.kept))


def register(main: click.Group, report: click.Group) -> None:
    main.add_command(nodes)
    main.add_command(node)
    main.add_command(status)
    main.add_command(install)
    main.add_command(uninstall)
