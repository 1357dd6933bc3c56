#!/usr/bin/env bash
# Prepare this machine for LouCloud: the Debian packages it needs and, on a machine
# without systemd, libvirt's daemons. As root it installs what is missing; otherwise it
# says exactly what is missing and goes on.
#
#   scripts/setup-system.sh run    packages to run the console (libvirt, QEMU, Python, Node)
#   scripts/setup-system.sh test   the same, plus what the test suite drives for real
set -uo pipefail

purpose=${1:-run}
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
case "$arch" in
  amd64) qemu_pkg=qemu-system-x86 ;;
  arm64) qemu_pkg=qemu-system-arm ;;
  *) qemu_pkg=qemu-system ;;
esac

run_pkgs=(python3 python3-venv python3-dev gcc pkg-config libvirt-dev
          libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
          "$qemu_pkg" qemu-utils iproute2 ca-certificates
          # libvirt's NAT networks (DHCP and DNS for the VMs, and the NAT rules)
          dnsmasq-base iptables
          # manage.py images build: a Debian cloud image from Debian's packages
          debootstrap mtools dosfstools fdisk e2fsprogs
          # which OS an uploaded install ISO holds (libosinfo's database of volume ids)
          osinfo-db)
# UEFI firmware for the images that need it, and the boot loader of built images.
[ "$arch" = amd64 ] && run_pkgs+=(ovmf syslinux syslinux-common)
test_pkgs=(chromium fonts-dejavu-core fonts-wqy-microhei mariadb-server apache2 apache2-dev openssh-client
           # a bootable ISO for the install-media test (ISOLINUX), and the task queue's
           # production broker, started by the tests that use it
           isolinux
           redis-server
           # docs/api.md's examples, run as written (tests/test_api_docs_curl.py)
           curl jq
           # LouCloud's containers (deploy/container/, tests/system/test_container.py):
           # podman and podman-compose; the CNI plugin that lets the containers find
           # each other by name; runc, which works where crun refuses the cgroups
           # (hybrid v1/v2); an OpenSSH server the test runs in front of a lab host
           # for qemu+ssh://, with its own configuration, in the host's namespaces
           # (with systemd, installing the package also starts Debian's own sshd)
           podman podman-compose golang-github-containernetworking-plugin-dnsname runc
           openssh-server)

pkgs=("${run_pkgs[@]}")
[ "$purpose" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm may come from elsewhere than Debian (NodeSource): look for the commands.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

is_root=0
[ "$(id -u)" = 0 ] && is_root=1

if [ ${#missing[@]} -gt 0 ]; then
  if [ $is_root = 1 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Package lists are refreshed only when apt has none yet or an install fails.
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update -q; fi
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
      apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}" || {
        echo "setup: could not install ${missing[*]}" >&2; exit 1; }
    fi
  else
    echo "setup: not root, so nothing is installed. Missing Debian packages:"
    echo "         sudo apt-get install ${missing[*]}"
    echo "setup: going on with what is here."
  fi
fi

# No systemd (containers, CI): start libvirt's daemons ourselves, once.
if [ $is_root = 1 ] && command -v libvirtd >/dev/null; then
  if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
    # What udev does on a normal Debian machine, when the kernel's KVM really works.
    if python3 - <<'PY' 2>/dev/null
import fcntl, os
fd = os.open("/dev/kvm", os.O_RDWR)
assert fcntl.ioctl(fd, 0xAE00) == 12          # KVM_GET_API_VERSION
os.close(fcntl.ioctl(fd, 0xAE01, 0))          # KVM_CREATE_VM
PY
    then
      # ... and a boot loader really runs under it (nested hypervisors may refuse).
      if why=$(python3 "$(dirname "$0")/kvm_probe.py" 2>&1); then
        chgrp kvm /dev/kvm && chmod 660 /dev/kvm
      else
        # Set it aside, so that libvirt offers TCG only (a /dev/kvm it cannot use makes
        # libvirt probe QEMU again on every call). `mv /dev/kvm.unusable /dev/kvm` undoes.
        mv /dev/kvm /dev/kvm.unusable
        echo "setup: $why: moved /dev/kvm to /dev/kvm.unusable; VMs run with TCG"
        echo "       (software emulation, slower). Move it back to try KVM again."
        restart_libvirtd=1
      fi
    fi
  fi
  if [ "${restart_libvirtd:-0}" = 1 ] && pgrep -x libvirtd >/dev/null; then
    if [ -d /run/systemd/system ]; then systemctl restart libvirtd
    else pkill -x libvirtd; sleep 1
    fi
  fi
  if [ ! -d /run/systemd/system ]; then
    pgrep -x virtlogd >/dev/null || virtlogd -d
    if ! pgrep -x libvirtd >/dev/null; then
      libvirtd -d && echo "setup: started libvirtd"
      for _ in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
    fi
  fi
elif [ $is_root = 0 ] && ! pgrep -x libvirtd >/dev/null; then
  echo "setup: libvirtd is not running and only root can start it; LouCloud will use a"
  echo "       simulated demo host until it runs (sudo systemctl start libvirtd)."
fi
exit 0
