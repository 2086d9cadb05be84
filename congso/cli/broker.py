"""Mosquitto for the office, and the province's roll-up: ``congso broker ...``, ``congso province``."""

from __future__ import annotations

from pathlib import Path

import click

from .output import output_options, show


@click.group()
def broker() -> None:
    """Mosquitto for the office: users, ACL and configuration.

    \b
    Examples:
      congso broker config --site ky-chau --out /etc/congso/broker --nodes door-1,tv-1,kiosk-1
      mosquitto -c /etc/congso/broker/mosquitto.conf
    """


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
@click.option("--no-tls", is_flag=True, help="No TLS (a test on one machine). Default without --tls-*: make the office CA in OUT/tls, TLS on the LAN, plain on 127.0.0.1 only.")
@click.option("--bridge-address", help="Forward congso/SITE/# to the province's broker at HOST:PORT.")
@click.option("--bridge-user", help="This office's user there (default: the site id).")
@click.option("--bridge-password", help="Its password (from `congso broker central` at the province).")
@click.option("--bridge-cafile", type=click.Path(dir_okay=False, exists=True), help="CA of the province broker's TLS listener.")
def broker_config(site, out_dir, nodes, port, bind, run_as, tls_cert, tls_key, tls_ca, tls_port, no_tls,
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

    \b
    Examples:
      congso broker config --site ky-chau --out /etc/congso/broker --nodes door-1,tv-1,kiosk-1
      congso broker config --site ky-chau --out /tmp/b --nodes door-1 --bind 127.0.0.1 --port 18830
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
        creds = generate(out_dir, site, node_ids, port=port, bind=bind, run_as=run_as, tls=tls, tls_port=tls_port, bridge=bridge,
                         office_tls=not no_tls)
    except (BrokerConfigError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    out = Path(out_dir)
    click.echo(f"wrote {out / 'mosquitto.conf'}, passwd, acl and credentials.json (users: {', '.join(creds)})")


@broker.command("central")
@click.option("--sites", required=True, help="Comma-separated office ids, e.g. ky-chau,ky-tan.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--port", default=1883, show_default=True, type=click.IntRange(1, 65535),
              help="The port the offices' bridges connect to.")
@click.option("--bind", default="", help="Listen on this address only.")
@click.option("--user", "run_as", default="mosquitto", show_default=True, help="User Mosquitto drops to when started as root.")
def broker_central(sites, out_dir, port, bind, run_as) -> None:
    """The province's broker: one user per office (its site id) for its bridge,
    and 'province' for the roll-up; passwords in OUT/credentials.json.

    \b
    Then on each office:  congso broker config ... --bridge-address HOST:PORT --bridge-password <its password>
    and at the province:  congso province --host HOST --user province --password <...>

    \b
    Example:
      congso broker central --sites ky-chau,ky-tan --out /etc/congso/central
    """
    from ..ops.broker import BrokerConfigError, generate_central

    try:
        creds = generate_central(out_dir, [s.strip() for s in sites.split(",") if s.strip()], port=port, bind=bind, run_as=run_as)
    except (BrokerConfigError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {Path(out_dir) / 'mosquitto.conf'}, passwd, acl and credentials.json (users: {', '.join(creds)})")


@click.command("province")
@click.option("--host", help="The province broker (default: [mqtt] host).")
@click.option("--port", type=int, help="Its port (default: [mqtt] port).")
@click.option("--user", "username", default="province", show_default=True, help="Its user for the roll-up.")
@click.option("--password", help="The 'province' user's password (default: [mqtt] password).")
@output_options
@click.pass_obj
def province(settings, host, port, username, password, fmt) -> None:
    """Attendance and satisfaction of every office bridged to the province broker.

    \b
    Read from each office's retained state/presence and state/ratings (figures
    only, no names) and its nodes' statuses; a TOTAL row sums them.
    Examples:
      congso province --host central.example --password P
      congso province --host central.example --password P --json | jq .present_pct
    """
    from dataclasses import asdict

    from ..ops.province import collect, rollup

    try:
        found = collect(host or settings.mqtt.host, port or settings.mqtt.port, username,
                        password if password is not None else settings.mqtt.password, cafile=settings.mqtt.tls_ca)
    except ConnectionError as e:
        raise click.ClickException(str(e)) from None
    rows = rollup(found)
    num = lambda v: "" if v is None else f"{v:g}"  # noqa: E731
    columns = ["office", "date", "staff", "checked in", "present %", "unsynced", "votes today", "votes month",
               "satisfied % month", "nodes online"]
    show(fmt, "province roll-up", columns,
         [[r.site, r.date or "", r.staff_active, r.checked_in, num(r.present_pct), r.unsynced_events,
           r.votes_today, r.votes_month, num(r.satisfied_pct_month), f"{r.nodes_online}/{r.nodes_total}"] for r in rows],
         records=[asdict(r) for r in rows], width=140)


@broker.command("check-db")
@click.option("--config", "conf", required=True, type=click.Path(dir_okay=False, exists=True), help="The mosquitto.conf whose persistence file to check.")
def broker_check_db(conf) -> None:
    """Move a corrupt mosquitto.db aside so that Mosquitto starts (run before it).

    The installed mosquitto.service runs this as ExecStartPre. Exit 0 either
    way; what was moved is printed (and logged by journald).

    \b
    Example:
      congso broker check-db --config /etc/congso/broker/mosquitto.conf
    """
    from ..ops.broker import check_db

    done = check_db(conf)
    click.echo(done or "persistence file ok")


def register(main: click.Group, report: click.Group) -> None:
    main.add_command(broker)
    main.add_command(province)
