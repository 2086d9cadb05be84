"""Looking after the devices: ``congso nodes``, ``congso node ...``, and a node's own ``congso status``.

``nodes`` reads the gateway's registry (``congso.gateway.registry``);
``node`` asks one node through the gateway (``congso.gateway.remote``);
``status`` runs on the node itself (``congso.nodestatus``).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from .common import gateway_db, office_now
from .output import TABLE, output_options, show

TIMEOUT_HELP = "Seconds to wait for the node's answer through the gateway (default: {:g})."


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


@click.command("nodes")
@output_options
@click.pass_obj
def nodes(settings, fmt) -> None:
    """Every node the gateway has heard of: online, last seen, version, outbox,
    clock, devices, last frame age, and any alert.

    \b
    A node is online when its status says so and it was heard from within
    three of its own heartbeats (each node says its interval in its health);
    "silent" when its status says online but it was not. An alert names what is wrong: offline, silent, or a
    device that is not ok (also logged by the gateway when it starts and ends).
    Examples:
      congso nodes
      congso nodes --json | jq 'select(.online | not) | .node_id'
    """
    from ..gateway import registry

    views = registry.list_nodes(gateway_db(settings, readonly=True), office_now(settings),
                                registry._silent_after(settings))
    columns = ["node", "kind", "online", "last seen", "version", "outbox", "clock", "devices", "frame", "alert"]
    plain, marked = [], []
    for v in views:
        frame = "" if v.last_frame_age_s is None else f"{v.last_frame_age_s:.1f} s"
        outbox = "" if v.outbox is None else str(v.outbox)
        # "silent": its status says online but its heartbeats stopped (protocol.liveness).
        alive = "yes" if v.online else ("silent" if v.liveness == "silent" else "no")
        plain.append([v.node_id, v.kind or "?", alive, _ago(v.last_seen_s), v.version or "",
                      outbox, {True: "synced", False: "NOT synced", None: ""}[v.clock_synced],
                      " ".join(f"{k}:{s}" for k, s in sorted(v.devices.items())), frame,
                      f"{v.alert} (since {v.alert_since})" if v.alert else ""])
        if fmt == TABLE:
            from rich.markup import escape

            devices = " ".join(f"{escape(k)}:{'[green]ok[/]' if s == 'ok' else f'[red]{escape(str(s))}[/]'}"
                               for k, s in sorted(v.devices.items()))
            marked.append([escape(v.node_id), escape(v.kind or "?"), "[green]yes[/]" if v.online else f"[red]{alive}[/]",
                           _ago(v.last_seen_s), escape(v.version or ""), outbox,
                           {True: "synced", False: "[yellow]NOT synced[/]", None: ""}[v.clock_synced], devices, frame,
                           f"[red]{escape(v.alert)}[/] (since {v.alert_since})" if v.alert else ""])
    show(fmt, f"nodes of {settings.site.id}", columns, plain, records=[v.__dict__ for v in views],
         table_rows=marked, width=140)


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


def _ask(settings, node_id: str, cmd: str, args: dict, timeout: float | None) -> dict:
    from ..gateway import audit, privacy, remote

    db = gateway_db(settings)
    # A command sent to a device is a change made through the CLI: logged before it is sent
    # (a fingerprint template in it is named, not written: privacy.redacted).
    audit.record_cli(db, f"node.{cmd}", node_id, privacy.redacted(args) or None)
    try:
        return remote.ask(db, node_id, cmd, args, timeout, settings.site.timezone)
    except remote.RemoteError as e:
        raise click.ClickException(str(e)) from None


def _timeout_option(cmd: str):
    from ..gateway.remote import ANY_COMMAND_TIMEOUT_S, DEFAULT_TIMEOUT_S

    default = DEFAULT_TIMEOUT_S.get(cmd, ANY_COMMAND_TIMEOUT_S)
    return click.option("--timeout", default=default, type=click.FloatRange(min=0, min_open=True),
                        help=TIMEOUT_HELP.format(default))


@node.command("identify")
@click.argument("node_id")
@_timeout_option("identify")
@click.pass_obj
def node_identify(settings, node_id, timeout) -> None:
    """Make NODE blink and beep (or flash its screen) so you can find it.

    \b
    Example:
      congso node identify door-1
    """
    result = _ask(settings, node_id, "identify", {}, timeout)
    click.echo(f"{node_id} identified itself {json.dumps(result, ensure_ascii=False)}")


@node.command("reload")
@click.argument("node_id")
@_timeout_option("reload")
@click.pass_obj
def node_reload(settings, node_id, timeout) -> None:
    """Ask NODE to reload its settings and state.

    \b
    Example:
      congso node reload kiosk-1
    """
    result = _ask(settings, node_id, "reload", {}, timeout)
    click.echo(f"{node_id} reloaded {json.dumps(result, ensure_ascii=False)}")


@node.command("screenshot")
@click.argument("node_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="PNG file (default: NODE-<time>.png).")
@click.option("--max-width", type=click.IntRange(min=1), help="Scale the picture down to this width.")
@_timeout_option("screenshot")
@click.pass_obj
def node_screenshot(settings, node_id, output, max_width, timeout) -> None:
    """Save what the screen of NODE (a TV or a kiosk) shows now as a PNG.

    \b
    Examples:
      congso node screenshot tv-1 -o tv.png
      congso node screenshot kiosk-1 --max-width 640
    """
    from ..gateway import remote

    try:
        png = remote.screenshot(gateway_db(settings), node_id, max_width, timeout, settings.site.timezone)
    except remote.RemoteError as e:
        raise click.ClickException(str(e)) from None
    path = Path(output or f"{node_id}-{datetime.now():%Y%m%d-%H%M%S}.png")
    path.write_bytes(png)
    click.echo(f"saved {path}")


@node.command("cmd")
@click.argument("node_id")
@click.argument("cmd")
@click.option("--args", "args_json", default="{}", help='Arguments as JSON, e.g. \'{"on": false}\'.')
@_timeout_option("cmd")
@click.pass_obj
def node_cmd(settings, node_id, cmd, args_json, timeout) -> None:
    """Send any command of the contract (e.g. display_power) and print the result as JSON.

    \b
    Examples:
      congso node cmd tv-1 display_power --args '{"on": false}'
      congso node cmd door-1 identify
    """
    try:
        args = json.loads(args_json)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--args") from None
    if not isinstance(args, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--args")
    click.echo(json.dumps(_ask(settings, node_id, cmd, args, timeout), ensure_ascii=False))


@click.command("status")
@click.pass_obj
def status(settings) -> None:
    """This node's own view (run it on the node): connection, outbox, clock, devices.

    \b
    Read from <data dir>/status.json, which the running node rewrites every
    heartbeat, connected or not, and from its outbox. A stale file means the
    node program is not running (systemctl status congso-<role>); the exit
    code is then 1.
    Example:
      sudo -u congso congso --config /etc/congso/congso.toml status
    """
    from .. import nodestatus

    try:
        view = nodestatus.read(settings)
    except nodestatus.StatusError as e:
        raise click.ClickException(str(e)) from None
    click.echo("\n".join(view.lines()))
    if not view.running:
        sys.exit(1)


def register(main: click.Group, report: click.Group) -> None:
    main.add_command(nodes)
    main.add_command(node)
    main.add_command(status)
