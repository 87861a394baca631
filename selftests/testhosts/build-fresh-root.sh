#!/bin/sh
# Build a fresh Debian root as a new machine or a `debian:12` container has it (debootstrap minbase:
# no python3, no pip) for selftests/integration/test_fresh_root.py, packed as OUT (tar, zstd).
# Needs root, debootstrap and zstd. Usage: build-fresh-root.sh OUT [SUITE [DEB_CACHE_DIR]]
# (SUITE: bookworm, the default, or trixie)
# Everything that defines the root lives in this file and mirror.sh: fresh_root.py hashes both.
set -eu
out=${1:?usage: build-fresh-root.sh OUT [SUITE [DEB_CACHE_DIR]]}
suite=${2:-bookworm}
debcache=${3:-}
mirror=$(sh "$(dirname "$0")/mirror.sh")
work=$(mktemp -d "${TMPDIR:-/tmp}/cisaudit-fresh-root.XXXXXX")
root=$work/root
cleanup() {
    # debootstrap leaves /proc and /sys mounted in the root when it fails.
    for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

set -- --variant=minbase --components=main
[ -n "$debcache" ] && mkdir -p "$debcache" && set -- "$@" --cache-dir="$(realpath "$debcache")"
echo "debootstrap $suite from $mirror" >&2
debootstrap "$@" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 40 "$work/debootstrap.log" >&2
    exit 1
}
# As in Debian's container images: packages installed in the root start no services (auditd's
# would take this machine's kernel audit connection).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages
tar -C "$root" --numeric-owner -cf - . | zstd -q -T0 -3 -o "$out.tmp"
mv "$out.tmp" "$out"
