"""A small bootable install ISO for the install-media tests, built from Debian's
packages: ISOLINUX (the isolinux package) boots the real guest's own kernel and initrd
(taken from the boot partition of `manage.py images build`'s image) with a marker on
the kernel command line, so a guest can tell whether it started from the CD-ROM.

On a VM whose disk holds the guest, the CD's kernel mounts the disk's root and the guest
comes up as usual, with ``loucloud.boot=cdrom`` in /proc/cmdline; on a blank disk the
initrd stops at its shell ("LABEL=root does not exist"), which the serial line shows."""
from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

MARKER = "loucloud.boot=cdrom"
ISOLINUX = Path("/usr/lib/ISOLINUX/isolinux.bin")
LDLINUX = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
VOLUME_ID = "LOUCLOUD_TEST_INSTALLER"


def unavailable_reason() -> str | None:
    for path, package in ((ISOLINUX, "isolinux"), (LDLINUX, "syslinux-common")):
        if not path.exists():
            return f"{path} is missing (install {package})"
    return None


def _boot_files(guest_image: Path, work: Path) -> tuple[bytes, bytes]:
    """vmlinuz and initrd.img from the guest image's FAT boot partition (mtools)."""
    raw = work / "guest.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(guest_image), str(raw)],
                   check=True)
    table = json.loads(subprocess.run(["sfdisk", "-J", str(raw)], check=True,
                                      capture_output=True, text=True).stdout)
    boot = table["partitiontable"]["partitions"][0]
    offset = boot["start"] * table["partitiontable"].get("sectorsize", 512)
    out = []
    for name in ("vmlinuz", "initrd.img"):
        dest = work / name
        subprocess.run(["mcopy", "-o", "-i", f"{raw}@@{offset}", f"::/{name}", str(dest)],
                       check=True)
        out.append(dest.read_bytes())
    raw.unlink()
    return out[0], out[1]


def build(guest_image: Path, dest: Path, kernel_args: str) -> Path:
    """Write the bootable ISO to ``dest``."""
    import pycdlib

    work = dest.parent / "bootiso-work"
    work.mkdir(exist_ok=True)
    kernel, initrd = _boot_files(guest_image, work)
    config = ("SERIAL 0 115200\nDEFAULT cd\nPROMPT 0\nTIMEOUT 1\nLABEL cd\n"
              f"  KERNEL /vmlinuz\n  APPEND initrd=/initrd.img {kernel_args} {MARKER}\n")
    disc = pycdlib.PyCdlib()
    disc.new(interchange_level=3, rock_ridge="1.09", vol_ident=VOLUME_ID)
    files = (("/ISOLINUX.BIN;1", "isolinux.bin", ISOLINUX.read_bytes()),
             ("/LDLINUX.C32;1", "ldlinux.c32", LDLINUX.read_bytes()),
             ("/ISOLINUX.CFG;1", "isolinux.cfg", config.encode()),
             ("/VMLINUZ.LIN;1", "vmlinuz", kernel), ("/INITRD.GZ;1", "initrd.img", initrd))
    for iso_path, rr_name, data in files:
        disc.add_fp(io.BytesIO(data), len(data), iso_path, rr_name=rr_name)
    disc.add_eltorito("/ISOLINUX.BIN;1", "/BOOT.CAT;1", boot_load_size=4,
                      boot_info_table=True)
    disc.write(str(dest))
    disc.close()
    return dest
