#!/usr/bin/env python3
"""Write this site's Apache and systemd files from /etc/loucloud/site.conf.

    python3 deploy/install.py [--site FILE] [--apache-site FILE] [--systemd-dir DIR]

(or LOUCLOUD_SITE, LOUCLOUD_APACHE_SITE, LOUCLOUD_SYSTEMD_DIR in the environment: the
deployment test writes its files elsewhere this way)

The tracked files in deploy/ hold no site's values: they say ${LOUCLOUD_HOME},
${LOUCLOUD_USER} ... and this writes
- Apache's site file (/etc/apache2/sites-available/loucloud.conf): the site's values as
  Apache ``Define``s, then an ``Include`` of deploy/apache-wsgi.conf (or
  apache-wsgi-http.conf) from the checkout, so that a ``git pull`` brings the new
  configuration and Apache fills in the values;
- LouCloud's systemd units (/etc/systemd/system/loucloud-*.service) from deploy/'s
  units with the values filled in (systemd cannot take a unit's user or directory from
  a variable).
It only writes files (and says which changed); deploy/upgrade reloads what needs it.
Python's standard library only: it runs before the virtualenv exists.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
UNITS = ("loucloud-console.service", "loucloud-watcher.service",
         "loucloud-sampler.service", "loucloud-worker.service")
DEFAULTS = {"LOUCLOUD_USER": "loucloud", "LOUCLOUD_TLS": "yes",
            "LOUCLOUD_HTTP_ADDRESS": "*:80", "LOUCLOUD_HTTPS_ADDRESS": "*:443",
            "LOUCLOUD_CONSOLE_HOST": "127.0.0.1", "LOUCLOUD_CONSOLE_PORT": "6080",
            "LOUCLOUD_CERTIFICATE": "",
            "LOUCLOUD_CERTIFICATE_KEY": ""}
REQUIRED = ("LOUCLOUD_HOME", "LOUCLOUD_SERVER_NAME")
VARIABLE = re.compile(r"\$\{(LOUCLOUD_[A-Z_]+)\}")


class SiteError(Exception):
    pass


def read_site(path: Path) -> dict[str, str]:
    """NAME=value lines (comments and blank lines skipped, quotes around a value
    dropped), checked: the values every file needs, absolute paths, a port."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SiteError(f"cannot read {path}: {exc.strerror}. Copy "
                        f"deploy/site.conf.example there and fill it in.") from None
    values = dict(DEFAULTS)
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        value = value.strip().strip("\"'")
        if not sep or not re.fullmatch(r"LOUCLOUD_[A-Z_]+", name):
            raise SiteError(f"{path}:{number}: expected LOUCLOUD_NAME=value")
        if re.search(r"[\s\"'\\$`]", value):
            raise SiteError(f"{path}:{number}: {name}: no spaces, quotes, $ or \\ in values")
        values[name] = value
    missing = [name for name in REQUIRED if not values.get(name)]
    tls = values["LOUCLOUD_TLS"].lower() in ("yes", "true", "1", "on")
    if tls:
        missing += [n for n in ("LOUCLOUD_CERTIFICATE", "LOUCLOUD_CERTIFICATE_KEY")
                    if not values[n]]
    if missing:
        raise SiteError(f"{path}: set {', '.join(missing)}")
    for name in ("LOUCLOUD_HOME", "LOUCLOUD_CERTIFICATE", "LOUCLOUD_CERTIFICATE_KEY"):
        if values[name] and not values[name].startswith("/"):
            raise SiteError(f"{path}: {name} must be an absolute path")
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", values["LOUCLOUD_USER"]):
        raise SiteError(f"{path}: LOUCLOUD_USER is not a user name")
    port = values["LOUCLOUD_CONSOLE_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SiteError(f"{path}: LOUCLOUD_CONSOLE_PORT is not a port")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", values["LOUCLOUD_CONSOLE_HOST"]):
        raise SiteError(f"{path}: LOUCLOUD_CONSOLE_HOST is not a host name or IPv4 address")
    values["LOUCLOUD_TLS"] = "yes" if tls else "no"
    return values


def render(text: str, values: dict[str, str], source: str) -> str:
    def value(match: re.Match) -> str:
        if match.group(1) not in values:
            raise SiteError(f"{source} uses ${{{match.group(1)}}}, which site.conf lacks")
        return values[match.group(1)]
    return VARIABLE.sub(value, text)


def apache_site(values: dict[str, str], site_path: Path) -> str:
    vhost = "apache-wsgi.conf" if values["LOUCLOUD_TLS"] == "yes" else "apache-wsgi-http.conf"
    lines = [f"# Written by {Path(sys.argv[0]).name} from {site_path}: change that file and",
             "# run it again. The configuration itself is in the checkout (git pull).",
             *(f"Define {name} {value}" for name, value in sorted(values.items())
               if value),
             f"Include {values['LOUCLOUD_HOME']}/deploy/{vhost}", ""]
    return "\n".join(lines)


def write(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write ``text`` to ``path`` if it differs; whether it did."""
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text)
    temporary.chmod(mode)
    os.replace(temporary, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=Path(
        os.environ.get("LOUCLOUD_SITE", "/etc/loucloud/site.conf")))
    parser.add_argument("--apache-site", type=Path, default=Path(os.environ.get(
        "LOUCLOUD_APACHE_SITE", "/etc/apache2/sites-available/loucloud.conf")))
    parser.add_argument("--systemd-dir", type=Path, default=Path(os.environ.get(
        "LOUCLOUD_SYSTEMD_DIR", "/etc/systemd/system")))
    args = parser.parse_args(argv)
    try:
        values = read_site(args.site)
        home = Path(values["LOUCLOUD_HOME"])
        if not (home / "deploy" / "install.py").exists():
            raise SiteError(f"LOUCLOUD_HOME={home} is not a LouCloud checkout")
        outputs = [(args.apache_site, apache_site(values, args.site))]
        for unit in UNITS:
            outputs.append((args.systemd_dir / unit,
                            f"# Written by install.py from {home}/deploy/{unit} and "
                            f"{args.site}.\n" + render((DEPLOY / unit).read_text(), values,
                                                          unit)))
        for vhost in ("apache-wsgi.conf", "apache-wsgi-http.conf", "loucloud-site.conf"):
            # Apache would start with an empty ${...}: say it now instead.
            render((DEPLOY / vhost).read_text(), values, vhost)
    except SiteError as exc:
        print(f"install: {exc}", file=sys.stderr)
        return 1
    for path, text in outputs:
        print(f"install: {'wrote' if write(path, text) else 'unchanged'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
