"""Installing a role on a Raspberry Pi: ``congso install``, ``congso uninstall`` (``congso.ops.install``)."""

from __future__ import annotations

from pathlib import Path

import click


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
@click.option("--ca-file", default="", help="A node: the office CA to trust (the gateway's /etc/congso/broker/tls/ca.crt), copied to /etc/congso/office-ca.crt.")
@click.option("--lan", default="", help="Gateway: the LAN allowed to take time from chrony, e.g. 192.168.1.0/24 (default: any).")
@click.option("--no-packages", is_flag=True, help="Do not run apt-get.")
@click.option("--no-venv", is_flag=True, help="Do not (re)install the virtualenv in /opt/congso/venv.")
@click.option("--pip-arg", "pip_args", multiple=True, help="Extra pip argument (repeatable), e.g. --pip-arg=--no-index.")
@click.option("--source", type=click.Path(file_okay=False, exists=True), help="The congso source tree (default: the one this congso runs from, or the copy installed with it).")
@click.option("--check", "check_only", is_flag=True, help="Only check what is installed (pygame's KMSDRM, lgpio, pyscard and pcscd), with the fix for each failure.")
@click.option("--no-check", is_flag=True, help="Do not check what was installed at the end.")
def install(role, root, source, site, site_name, node_id, gateway_host, nodes, mqtt_password, ca_file, lan, no_packages, no_venv, pip_args,
            check_only, no_check) -> None:
    """Install ROLE on this Raspberry Pi (bookworm): packages, user, venv, config, unit.

    \b
    Safe to run again: what is already right is left alone, and an existing
    /etc/congso/congso.toml is never overwritten. Needs root. It ends by
    checking what it installed, for real, and fails with the fix if not.
    With --root, or where systemd is not running (a chroot: preparing one SD
    card for every Pi of a role), units are enabled by links and nothing is
    started; the checks that need the running Pi are skipped.
    Examples:
      sudo congso install gateway --nodes door-1,tv-1,kiosk-1 --lan 192.168.1.0/24
      sudo congso install attendance --node-id door-1 --gateway-host 192.168.1.10 --mqtt-password ...
      congso install signage --root /tmp/image --no-packages      (try it in a directory)
    """
    from ..ops.install import Installer, InstallError, Options

    options = Options(role=role, root=Path(root), site=site, site_name=site_name, node_id=node_id,
                      gateway_host=gateway_host, nodes=[n.strip() for n in nodes.split(",") if n.strip()],
                      mqtt_password=mqtt_password, ca_file=ca_file, lan=lan, packages=not no_packages, venv=not no_venv,
                      pip_args=list(pip_args), check=not no_check, **({"source": Path(source).resolve()} if source else {}))
    try:
        installer = Installer(options)
        if check_only:
            installer.checks()
        result = installer.report if check_only else installer.install()
    except InstallError as e:
        raise click.ClickException(str(e)) from None
    for item in result.changed:
        click.echo(f"changed  {item}")
    for item in result.kept:
        click.echo(f"ok       {item}")
    for item in result.skipped:
        click.echo(f"skipped  {item}")
    if check_only:
        click.echo(f"congso-{role}: what is installed works" + ("" if root == "/" else f" (in {root})"))
        return
    click.echo(f"congso-{role} installed" + ("" if root == "/" else f" into {root}")
               + (" (image-building mode: enabled, nothing started)" if installer.image else ""))


@click.command("uninstall")
@_install_options
@click.option("--purge", is_flag=True, help="Also remove /etc/congso, /var/lib/congso and /opt/congso.")
@click.option("--source", type=click.Path(file_okay=False, exists=True), help="The congso source tree.")
def uninstall(role, root, purge, source) -> None:
    """Remove what `congso install ROLE` added; the config and data stay unless --purge.

    \b
    Examples:
      sudo congso uninstall signage
      sudo congso uninstall gateway --purge      (also the office's data: back it up first)
    """
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
    main.add_command(install)
    main.add_command(uninstall)
