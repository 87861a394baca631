# cisaudit probe: the two guesses the probe makes in shell. POSIX sh; defines functions only.
# shellcheck shell=sh
#
# What a config means is decided in Python (cisaudit/model/locate.py, from the files' text the
# probe dumps). The probe guesses here only to stat, in the same one command, the paths a config
# names; a path a guess misses (JSON escapes, a --data-root flag, a TOML the awk cannot follow) is
# stat'ed by the session's follow-up command (cisaudit/host/probe.py render_stat_script), so a miss
# costs one command, never a verdict. selftests/unit/test_probe_guess.py holds both sides to agree.

# The "data-root" of a daemon.json (locate.py _data_root), on stdout; nothing when there is none.
# No process where the file is missing (Docker's default: no daemon.json); sed stops at the first.
guess_data_root() {
  [ -f "$1" ] || return 0
  sed -n -e 's/.*"data-root"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/' -e 't found' -e 'd' -e ':found' -e 'p' -e 'q' "$1" 2>/dev/null
}

# The [grpc] address of a containerd config.toml (locate.py _containerd_socket), on stdout.
guess_containerd_socket() {
  [ -f "$1" ] || return 0
  awk '/^[[:space:]]*\[/ { g = ($0 ~ /^[[:space:]]*\[grpc\]/) }
    g && /^[[:space:]]*address[[:space:]]*=/ { sub(/^[^=]*=[[:space:]]*"/, ""); sub(/".*/, ""); print; exit }' \
    "$1" 2>/dev/null
}
