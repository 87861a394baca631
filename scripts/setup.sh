#!/bin/sh
# Install what the suite needs on a fresh Debian/Ubuntu machine (run as root).
#   sh scripts/setup.sh          the audit itself: auditd (auditctl, ausearch) and the pinned Python packages
#   sh scripts/setup.sh --test   also what the self-tests need: sshd, sudo, QEMU and debootstrap for test VMs,
#                                gcc and libc6-dev (static) for the kernel-truth test's 32-bit access program
#                                Chromium (report screenshots) and OpenSCAP's oscap (XCCDF validation)
set -eu
cd "$(dirname "$0")/.."
packages="auditd openssh-client"
requirements=requirements.txt
if [ "${1:-}" = "--test" ]; then
  packages="$packages openssh-server sudo qemu-system-x86 qemu-utils debootstrap e2fsprogs zstd dash gcc libc6-dev chromium fonts-liberation openscap-scanner shellcheck"
  requirements="requirements-dev.txt"
fi
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -r "$requirements"
if [ "${1:-}" = "--test" ]; then
  # Docker's files (docker.io, containerd, runc), unpacked, not installed: selftests/docker_root.py lays them
  # over /usr and /etc in a private mount namespace, so the self-tests also run as on a machine with Docker.
  root=.cache/docker-root
  if [ ! -x "$root/usr/sbin/dockerd" ]; then
    rm -rf "$root.tmp" && mkdir -p "$root.tmp/debs"
    (cd "$root.tmp/debs" && apt-get download -qq docker.io containerd runc >/dev/null 2>&1)
    for deb in "$root.tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$root.tmp/root"; done
    # Debian's /lib is /usr/lib (merged /usr): the packages' lib/ goes there.
    mkdir -p "$root.tmp/root/usr/lib" && cp -a "$root.tmp/root/lib/." "$root.tmp/root/usr/lib/" && rm -rf "$root.tmp/root/lib"
    rm -rf "$root" && mv "$root.tmp/root" "$root" && rm -rf "$root.tmp"
  fi
fi
