# cisaudit probe functions, shared by the probe (probe.sh) and its follow-up stat command.
# POSIX sh. The caller defines M, the random section marker (cisaudit/host/probe.py renders both).
# shellcheck shell=sh
sec() { printf '%s %s\n' "$M" "$*"; }
end() { printf '\n'; }
# run NAME CMD...: one section holding the command's stdout+stderr and exit code
run() {
  name=$1; shift
  out=$("$@" 2>&1); rc=$?
  sec "$name" "$rc"; printf '%s' "$out"; end
}
dump() {  # dump NAME FILE: a file's bytes, or why it could not be read
  if [ -f "$2" ] && [ -r "$2" ]; then sec "$1" "$2"; cat "$2"; end
  elif [ -e "$2" ]; then sec "$1-error" "$2"; echo "not a readable regular file"; end
  fi
}
# stat_paths P...: every argument is a path (any byte but NUL). Three sections, NUL-separated so
# that no byte in a path can shift a record (docs/kernel-behaviour.md, "Probe"):
#   paths    KIND\0PATH\0 per argument (test builtins: forks are dear in an emulated guest)
#   targets  readlink -m of every argument, NUL-terminated, in order, then readlink's exit code
#   modes    MODE UID GID PATH\0 for those that exist (for tmpfiles.d entries)
stat_paths() {
  sec paths
  for p in "$@"; do
    if [ -L "$p" ]; then k=symlink
    elif [ -d "$p" ]; then k=dir
    elif [ -S "$p" ]; then k=socket
    elif [ -e "$p" ]; then k='file'
    else k=absent
    fi
    printf '%s\0%s\0' "$k" "$p"
  done
  end
  sec targets
  if readlink -z -m -- / >/dev/null 2>&1; then
    readlink -z -m -- "$@" 2>/dev/null; printf '%s' "$?"
  else  # no GNU readlink (busybox): one call per path
    for p in "$@"; do printf '%s\0' "$(readlink -f "$p" 2>/dev/null)"; done; printf 0
  fi
  end
  sec modes; stat --printf '%a %u %g %n\0' -- "$@" 2>/dev/null; end
}
