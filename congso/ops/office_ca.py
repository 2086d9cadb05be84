"""The office's own certificate authority and the broker's TLS certificate.

Fingerprint templates, passwords and card UIDs cross the office LAN, so the
broker's LAN listener speaks TLS. No public CA will sign a certificate for
``gateway.local`` or ``192.168.1.10``, and none is needed: the gateway makes
a CA of its own once, and every node is given that CA's certificate
(``[mqtt] tls_ca``) and trusts nothing else.

In ``<broker dir>/tls/`` (made with the ``openssl`` program, which Debian and
Raspberry Pi OS ship):

- ``ca.key`` (0600, root only): the CA's private key. It never leaves the
  gateway; whoever has it can impersonate the broker.
- ``ca.crt`` (0644): what each node gets, valid 20 years. Made once and
  kept on every re-run: the nodes never need it again.
- ``server.key`` (0600, owned by the broker's user) and ``server.crt``
  (0644): the broker's certificate for the names and addresses the nodes
  use (``server.hosts`` lists them). Issued again when that list changes or
  when it has less than 30 days left (valid 825 days).
"""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

CA_DAYS = 20 * 365
SERVER_DAYS = 825
RENEW_BEFORE_S = 30 * 86400


class OfficeCaError(RuntimeError):
    pass


def default_hosts(extra: list[str] | None = None) -> list[str]:
    """The names and addresses a node may use for this machine.

    Its host name, ``<name>.local`` (mDNS), loopback, and the address of the
    interface that holds the default route (no packet is sent to find it).
    """
    name = socket.gethostname()
    hosts = [*(extra or []), name, f"{name}.local", "localhost", "127.0.0.1"]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET: connect() on UDP only picks a route
            hosts.append(s.getsockname()[0])
    except OSError:
        pass  # no network yet: the names still work
    return list(dict.fromkeys(h for h in hosts if h))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _openssl(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("openssl")
    if not exe:
        raise OfficeCaError("openssl not found: install the Debian package 'openssl'")
    result = subprocess.run([exe, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise OfficeCaError(f"openssl {args[0]} failed: {result.stderr.strip()}")
    return result


def _new_key(path: Path) -> None:
    # Written 0600 from the start: no moment at which another user could read it.
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(tmp))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _expiring(cert: Path) -> bool:
    exe = shutil.which("openssl") or "openssl"
    return subprocess.run([exe, "x509", "-checkend", str(RENEW_BEFORE_S), "-noout", "-in", str(cert)],
                          capture_output=True).returncode != 0


def ensure(tls_dir: str | os.PathLike, site: str, hosts: list[str], run_as: str = "mosquitto") -> tuple[Path, Path, Path, list[str]]:
    """Make (or keep) the office CA and the broker's certificate in ``tls_dir``.

    Returns ``(ca.crt, server.crt, server.key, what was made)``.
    """
    d = Path(tls_dir)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)  # the broker's user reads its key and certificate in here
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    key, crt = d / "server.key", d / "server.crt"
    made: list[str] = []
    hosts = list(dict.fromkeys(hosts))
    if not hosts:
        raise OfficeCaError("the broker's certificate needs at least one host name or address")

    if not (ca_key.is_file() and ca_crt.is_file()):
        _new_key(ca_key)
        _openssl("req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", str(CA_DAYS),
                 "-subj", f"/O=congso/CN=congso office CA {site}",
                 "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-out", str(ca_crt))
        os.chmod(ca_crt, 0o644)
        crt.unlink(missing_ok=True)  # a new CA: the old server certificate is worthless
        made.append(f"office CA {ca_crt}")
    os.chmod(ca_key, 0o600)

    if _issue(d, "server", hosts, ca_crt, ca_key):
        made.append(f"broker certificate {crt} for {', '.join(hosts)}")
    _give_key(key, run_as)
    return ca_crt, crt, key, made


def _issue(d: Path, name: str, hosts: list[str], ca_crt: Path, ca_key: Path) -> bool:
    """Issue ``<name>.crt``/``<name>.key`` in ``d`` for ``hosts``, signed by the CA,
    unless the one there already names exactly these hosts and is not expiring."""
    key, crt, listed = d / f"{name}.key", d / f"{name}.crt", d / f"{name}.hosts"
    wanted = "\n".join(hosts) + "\n"
    stale = (not crt.is_file() or not key.is_file() or not listed.is_file()
             or listed.read_text() != wanted or _expiring(crt) or not _signed_by(crt, ca_crt))
    if not stale:
        return False
    _new_key(key)
    csr, ext = d / f"{name}.csr", d / f"{name}.ext"
    _openssl("req", "-new", "-key", str(key), "-subj", f"/O=congso/CN={hosts[0]}", "-out", str(csr))
    sans = ",".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in hosts)
    ext.write_text(f"subjectAltName={sans}\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-set_serial",
             str(int.from_bytes(os.urandom(16), "big")), "-days", str(SERVER_DAYS), "-sha256",
             "-extfile", str(ext), "-out", str(crt))
    csr.unlink()
    ext.unlink()
    os.chmod(crt, 0o644)
    listed.write_text(wanted)
    return True


def _signed_by(crt: Path, ca_crt: Path) -> bool:
    exe = shutil.which("openssl") or "openssl"
    return subprocess.run([exe, "verify", "-CAfile", str(ca_crt), str(crt)], capture_output=True).returncode == 0


def web_hosts(extra: list[str] | None = None, name: str | None = None, addresses: bool = True) -> list[str]:
    """The names and addresses an office PC may type for the console: the host
    name, ``<name>.local``, every LAN address of this machine (``addresses``), 127.0.0.1."""
    name = name or socket.gethostname()
    hosts = [*(extra or []), name, f"{name}.local", "localhost", "127.0.0.1"]
    if not addresses:
        return list(dict.fromkeys(h for h in hosts if h))
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    hosts += [a for a in out if _is_ip(a) and not ipaddress.ip_address(a).is_link_local]
    hosts += [h for h in default_hosts() if _is_ip(h)]  # the default route's address, when hostname -I is missing
    return list(dict.fromkeys(h for h in hosts if h))


def ensure_web(ca_dir: str | os.PathLike, out_dir: str | os.PathLike, hosts: list[str],
               group: str | None = "congso") -> tuple[Path, Path, list[str]]:
    """The console's HTTPS certificate, signed by the office CA in ``ca_dir``.

    ``out_dir/web.crt`` (0644) and ``out_dir/web.key`` (0640, root:``group``:
    the console runs as the user congso, nobody else reads it). Issued again
    when the hosts change, the CA changed, or it has less than 30 days left.
    Returns ``(web.crt, web.key, what was made)``.
    """
    ca_dir, d = Path(ca_dir), Path(out_dir)
    ca_key, ca_crt = ca_dir / "ca.key", ca_dir / "ca.crt"
    if not (ca_key.is_file() and ca_crt.is_file()):
        raise OfficeCaError(f"no office CA in {ca_dir} (the broker's TLS listener makes it first)")
    hosts = list(dict.fromkeys(hosts))
    if not hosts:
        raise OfficeCaError("the console's certificate needs at least one host name or address")
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    made = []
    if _issue(d, "web", hosts, ca_crt, ca_key):
        made.append(f"console certificate {d / 'web.crt'} for {', '.join(hosts)}")
    key = d / "web.key"
    os.chmod(key, 0o640)
    if group and os.geteuid() == 0:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise OfficeCaError(f"group {group!r} does not exist (systemd-sysusers makes it)") from None
        os.chown(key, 0, gid)
    return d / "web.crt", key, made


def _give_key(key: Path, run_as: str) -> None:
    """Mosquitto reads its key after dropping to ``run_as``."""
    os.chmod(key, 0o600)
    if os.geteuid() == 0 and run_as != "root":
        try:
            account = pwd.getpwnam(run_as)
        except KeyError:
            raise OfficeCaError(f"user {run_as!r} does not exist (is the mosquitto package installed?)") from None
        os.chown(key, account.pw_uid, account.pw_gid)
