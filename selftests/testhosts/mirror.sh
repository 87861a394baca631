#!/bin/sh
# The Debian mirror for debootstrap (build-image.sh, build-fresh-root.sh): CISAUDIT_MIRROR, else the
# same mirror as this machine's apt (the first non-security Debian URI), else deb.debian.org.
set -eu
mirror=${CISAUDIT_MIRROR:-$(
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '/^URIs:/ {print $2} /^deb / {print ($2 ~ /^\[/) ? $3 : $2}' |
    grep -E '/debian/?$' | head -n 1
)}
echo "${mirror:-http://deb.debian.org/debian}"
