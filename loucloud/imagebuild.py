"""A small, ready Debian cloud image made from Debian's own packages: a real
distribution kernel, systemd, cloud-init, the QEMU guest agent, SSH and a getty on
the serial console, as a compressed qcow2 of a few hundred MiB.

How, without loop devices, mounts or a VM: debootstrap fills a directory; mke2fs -d
makes the root file system straight from it; the kernel and its initramfs go on a small
FAT partition that syslinux makes bootable (through mtools, on the unmounted image);
the two partitions and syslinux's MBR are laid into one raw disk, which qemu-img
compresses into qcow2. The result is kept in a cache directory under a name that
changes with the recipe, so it is built once per machine and per recipe; two builds at
once (two test runs) wait for one another instead of building twice.

It boots as little as a LouCloud VM needs (under TCG, without KVM, every program and
Python start costs seconds): an initramfs with the virtio disk's drivers only, the
cloud-init modules LouCloud's seed uses and no others (no config stage at all), SSH
host keys of the fast kinds, no periodic jobs (see _trim_boot).

This module runs programs (debootstrap, mke2fs, mkfs.vfat, syslinux, sfdisk, qemu-img):
it is used by the command line (``manage.py images build``) and the tests, never by the
web processes."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

from flask_babel import gettext as _

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("linux-image-cloud-amd64", "systemd-sysv", "udev", "cloud-init",
            "qemu-guest-agent", "openssh-server", "ifupdown", "isc-dhcp-client",
            "iproute2", "procps", "sudo", "less", "ca-certificates", "e2fsprogs",
            "cloud-guest-utils",              # growpart: the root grows to the VM's disk
            "dbus", "libpam-systemd")         # logind: the ACPI power button shuts down
BOOT_MIB = 96
SLACK_MIB = 512                   # free room in the root file system
RECIPE_VERSION = 6                # change it when the steps below change
# Another recipe's image in the cache (another checkout's, on the same machine) is
# removed only after this long unused: two checkouts of different recipes would
# otherwise remove each other's image at every build.
KEEP_UNUSED_DAYS = 14
PROGRAMS = {"debootstrap": "debootstrap", "mke2fs": "e2fsprogs", "mkfs.vfat": "dosfstools",
            "mcopy": "mtools", "syslinux": "syslinux", "sfdisk": "fdisk",
            "qemu-img": "qemu-utils"}
MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
KERNEL_ARGS = "root=LABEL=root rw console=tty0 console=ttyS0,115200n8 net.ifnames=0"


class BuildError(RuntimeError):
    """The image could not be built; the message says which step and why."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("LOUCLOUD_IMAGE_CACHE", "/var/cache/loucloud/images"))


def recipe() -> dict:
    return {"suite": SUITE, "packages": sorted(PACKAGES), "boot_mib": BOOT_MIB,
            "kernel_args": KERNEL_ARGS, "version": RECIPE_VERSION, "arch": "amd64"}


def cached_path(cache_dir: Path) -> Path:
    key = hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir / f"loucloud-debian-{SUITE}-{key}.qcow2"


def missing_programs() -> list[str]:
    """Debian packages to install before building (empty: all there)."""
    missing = sorted({pkg for prog, pkg in PROGRAMS.items() if not shutil.which(prog)})
    if not MBR_BIN.exists():
        missing.append("syslinux-common")
    return missing


def build(cache_dir: Path | None = None, *, mirror: str = MIRROR,
          say: Callable[[str], None] = print) -> Path:
    """The image's path in ``cache_dir``, built first when it is not there. Raises
    BuildError. Needs root (debootstrap) and network access to the Debian mirror."""
    cache_dir = cache_dir or default_cache_dir()
    out = cached_path(cache_dir)
    if out.exists():
        _mark_used(out)
        say(_("image: %(path)s (built before)", path=out))
        return out
    if os.geteuid() != 0:
        raise BuildError(_("building the image needs root (debootstrap makes a Debian "
                           "system); run it as root once, later runs reuse it"))
    missing = missing_programs()
    if missing:
        command = "apt-get install " + " ".join(missing)
        raise BuildError(_("install first: %(command)s", command=command))
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # another build of this machine: wait for it
        if out.exists():
            _mark_used(out)
            say(_("image: %(path)s (built meanwhile)", path=out))
            return out
        work = cache_dir / f"work-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            _build(work, out, mirror, say)
        except BaseException:
            log = work / "root/debootstrap/debootstrap.log"
            if log.exists():
                shutil.copy(log, cache_dir / "last-failed-debootstrap.log")
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


def _mark_used(image: Path) -> None:
    """The cached image was used now (its modification time says when last)."""
    try:
        os.utime(image)
    except OSError:
        pass    # a cache this user may read but not write


def forget_unused(keep: Path, now: float | None = None) -> list[Path]:
    """Remove the other recipes' images beside ``keep`` that nobody used for
    KEEP_UNUSED_DAYS; returns those removed."""
    limit = (now if now is not None else time.time()) - KEEP_UNUSED_DAYS * 86400
    gone = []
    for old in keep.parent.glob(f"loucloud-debian-{SUITE}-*.qcow2"):
        if old != keep and old.stat().st_mtime < limit:
            old.unlink(missing_ok=True)
            gone.append(old)
    return gone


def _run(step: str, argv: list[str], say, **kw) -> str:
    started = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=True, **kw)
    except subprocess.CalledProcessError as exc:
        tail = "\n".join((exc.stderr or exc.stdout or "").strip().splitlines()[-15:])
        raise BuildError(_("%(step)s failed (%(program)s exit %(code)s):", step=step,
                           program=argv[0], code=exc.returncode) + f"\n{tail}") from None
    say(f"  {step}: {time.monotonic() - started:.0f} s")
    return done.stdout


def _build(work: Path, out: Path, mirror: str, say) -> None:
    root = work / "root"
    say(_("building a Debian %(suite)s cloud image from %(mirror)s (a few minutes, once)",
          suite=SUITE, mirror=mirror))
    _run("debootstrap", ["debootstrap", "--variant=minbase", "--components=main", SUITE,
                         str(root), mirror], say, timeout=1800)
    # apt inside resolves the packages' dependencies (debootstrap --include does not
    # always); no service starts in the chroot.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C.UTF-8"}
    _run(_("packages"), ["chroot", str(root), "apt-get", "-q", "-y", "install",
                      "--no-install-recommends", *PACKAGES], say, env=env, timeout=1800)
    _run(_("clean"), ["chroot", str(root), "apt-get", "clean"], say, env=env)
    policy.unlink()
    _configure(root)
    _run("initramfs", ["chroot", str(root), "update-initramfs", "-u", "-k", "all"], say,
         env=env)
    kernel = sorted(root.glob("boot/vmlinuz-*"))
    initrd = sorted(root.glob("boot/initrd.img-*"))
    if not kernel or not initrd:
        raise BuildError(_("debootstrap made no kernel or initramfs"))
    used = int(_run(_("size"), ["du", "-sm", "--apparent-size", str(root)], say).split()[0])
    root_mib = used + SLACK_MIB
    _run(_("root file system"), ["mke2fs", "-q", "-t", "ext4", "-L", "root", "-d", str(root),
                              "-F", str(work / "root.img"), f"{root_mib}M"], say)
    boot = work / "boot.img"
    _run(_("boot partition"), ["mkfs.vfat", "-n", "BOOT", "-C", str(boot),
                            str(BOOT_MIB * 1024)], say)
    cfg = work / "syslinux.cfg"
    cfg.write_text(f"SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 1\nLABEL linux\n"
                   f"  KERNEL /vmlinuz\n  APPEND initrd=/initrd.img {KERNEL_ARGS}\n")
    for src, name in ((kernel[-1], "vmlinuz"), (initrd[-1], "initrd.img"),
                      (cfg, "syslinux.cfg")):
        _run(_("copy %(file)s", file=name),
             ["mcopy", "-i", str(boot), str(src), f"::/{name}"], say)
    _run(_("boot loader"), ["syslinux", "--install", str(boot)], say)
    disk = work / "disk.raw"
    start = 2048                                   # sectors: 1 MiB
    boot_sectors = BOOT_MIB * 2048
    root_start = start + boot_sectors
    total = (root_start + root_mib * 2048 + 2048) * 512
    with open(disk, "wb") as f:
        f.truncate(total)
    _run(_("partitions"), ["sfdisk", "--quiet", str(disk)], say,
         input=f"label: dos\nstart={start}, size={boot_sectors}, type=c, bootable\n"
               f"start={root_start}, type=83\n")
    with open(disk, "r+b") as f:
        f.write(MBR_BIN.read_bytes()[:440])        # the boot code; the table stays
        for image, sector in ((boot, start), (work / "root.img", root_start)):
            f.seek(sector * 512)
            with open(image, "rb") as src:
                shutil.copyfileobj(src, f, 4 * 1024 * 1024)
    tmp = out.with_suffix(".qcow2.tmp")
    _run("qcow2", ["qemu-img", "convert", "-c", "-O", "qcow2", str(disk), str(tmp)], say)
    os.replace(tmp, out)
    forget_unused(out)
    say(_("image: %(path)s (%(size)s MiB)", path=out,
          size=out.stat().st_size // (1024 * 1024)))


def _configure(root: Path) -> None:
    """What turns a fresh debootstrap into a cloud image."""
    (root / "etc/fstab").write_text("LABEL=root / ext4 errors=remount-ro 0 1\n")
    (root / "etc/hostname").write_text("debian\n")
    (root / "etc/network/interfaces").write_text(
        "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n")
    # Only LouCloud's seed CD-ROM (NoCloud): no waiting for cloud metadata servers.
    (root / "etc/cloud/cloud.cfg.d/90_loucloud.cfg").write_text(
        "datasource_list: [ NoCloud, None ]\n")
    # Every VM gets its own machine id and SSH host keys at first boot.
    (root / "etc/machine-id").write_text("")
    for path in [root / "var/lib/dbus/machine-id", *root.glob("etc/ssh/ssh_host_*")]:
        path.unlink(missing_ok=True)
    _trim_boot(root)
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (root / junk).glob("*"):
            if path.is_file():
                path.unlink()


# What a LouCloud VM never uses, cut from its boot (under TCG, where every program and
# every Python start is slow, each costs seconds). What LouCloud's seed asks for stays:
# hostname, users, SSH keys, password, boot jobs (bootcmd, write_files, runcmd, packages),
# growpart/resizefs, the network; and the guest agent, logind, the gettys.
CLOUD_CONFIG = """\
# Only the modules that act on what LouCloud's seed (NoCloud) can say. The password
# and runcmd's script are set in the init stage (before sshd starts: no restart of it),
# so the config stage has nothing to do and does not run (its unit is masked).
cloud_init_modules: [bootcmd, write-files, growpart, resizefs, set_hostname,
                     update_hostname, update_etc_hosts, users-groups, ssh, set-passwords,
                     runcmd]
cloud_config_modules: []
cloud_final_modules: [package-update-upgrade-install, write-files-deferred,
                      scripts-per-once, scripts-per-boot, scripts-per-instance, scripts-user,
                      ssh-authkey-fingerprints, keys-to-console, final-message]
# The host keys: Ed25519 and ECDSA, which every SSH client of the last ten years takes.
# No RSA key (3072 bits took 4 to 15 s to make under TCG), no DSA key (which
# bookworm's sshd does not even load).
ssh_genkeytypes: [ed25519, ecdsa]
ssh_quiet_keygen: true
"""
# cloud-init's config stage (no modules left), and periodic jobs with nothing to do
# here (no unattended-upgrades, no LVM for e2scrub, no discard on the VM's disk for
# fstrim) that would otherwise wake up inside a test.
MASKED_UNITS = ("cloud-config.service", "apt-daily.timer", "apt-daily-upgrade.timer",
                "dpkg-db-backup.timer", "e2scrub_all.timer", "e2scrub_reap.service",
                "fstrim.timer")
# The initramfs only has to find the root file system on the VM's virtio disk (ext4 is
# built into Debian's cloud kernel): a few MiB instead of every storage driver.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk")


def _trim_boot(root: Path) -> None:
    (root / "etc/cloud/cloud.cfg.d/91_loucloud_modules.cfg").write_text(CLOUD_CONFIG)
    system = root / "etc/systemd/system"
    for unit in MASKED_UNITS:
        for wants in system.glob(f"*.wants/{unit}"):
            wants.unlink()
        (system / unit).unlink(missing_ok=True)
        (system / unit).symlink_to("/dev/null")
    conf = root / "etc/initramfs-tools"
    (conf / "conf.d/loucloud").write_text("MODULES=list\nRESUME=none\n")
    with open(conf / "modules", "a") as f:
        f.write("".join(f"{name}\n" for name in INITRAMFS_MODULES))
