#!/bin/sh
# Install what the suite needs on a fresh Debian 12/13 or Ubuntu 22.04/24.04 machine (run as root), and
# the suite itself into a virtual environment in the checkout, .venv: the system Python stays untouched
# (PEP 668). Run it again at will: it only installs what is missing or changed.
#   sh scripts/setup.sh          the audit itself: auditd (auditctl, ausearch), Python 3.11+ with venv,
#                                the pinned Python packages and the project (its pytest11 entry point)
#   sh scripts/setup.sh --test   also what the self-tests need: sshd, sudo, QEMU and debootstrap for test VMs,
#                                gcc and libc6-dev (static) for the kernel-truth test's 32-bit access program
#                                Chromium (report screenshots), OpenSCAP's oscap (XCCDF validation), ruff and mypy
# Then: .venv/bin/pytest tests (or `. .venv/bin/activate` first, then pytest).
set -eu
cd "$(dirname "$0")/.."
packages="auditd openssh-client"
requirements=requirements.txt
if [ "${1:-}" = "--test" ]; then
  packages="$packages openssh-server sudo qemu-system-x86 qemu-utils debootstrap e2fsprogs zstd dash gcc libc6-dev chromium fonts-liberation openscap-scanner shellcheck strace"
  requirements="requirements-dev.txt"
fi
updated=""
apt_install() { # the named Debian packages that are not installed yet
  missing=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -n "$missing" ] || return 0
  [ -n "$updated" ] || apt-get update -qq
  updated=1
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
# Python 3.11 or newer that can make a venv with pip (Debian and Ubuntu put that in python3-venv).
usable() {
  command -v "$1" >/dev/null 2>&1 &&
    "$1" -c 'import sys, ensurepip, venv; ensurepip.version(); sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}
venv=.venv
python=""
if ! "$venv/bin/python" -c '' 2>/dev/null; then # no venv yet, or its interpreter is gone
  for p in python3 python3.13 python3.12 python3.11; do usable "$p" && python=$p && break; done
  [ -n "$python" ] || packages="$packages python3 python3-venv"
fi
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt_install $packages
if ! "$venv/bin/python" -c '' 2>/dev/null; then
  if [ -z "$python" ]; then
    if usable python3; then python=python3; else
      apt_install python3.11 python3.11-venv # Ubuntu 22.04: python3 is 3.10
      python=python3.11
    fi
  fi
  "$python" -m venv --clear "$venv"
fi
# pip runs only when the venv's Python or what it installs changed since the last run.
stamp="$venv/.cisaudit-$requirements"
want=$({ "$venv/bin/python" -VV && cat requirements.txt "$requirements" pyproject.toml; } | sha256sum)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # Editable: the venv runs the checkout's code; the pytest11 entry point loads the plugin from anywhere.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" -e .
  echo "$want" >"$stamp"
fi
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
