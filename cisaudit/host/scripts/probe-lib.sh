# cisaudit probe functions, shared by the probe (probe.sh) and its follow-up stat command.
# POSIX sh. The caller defines M, the public half of the section marker (cisaudit/host/probe.py
# renders both scripts).
# shellcheck shell=sh
#
# Framing (parsed by cisaudit/host/probe.py _sections; docs/threat-model.md): a section is
#   "$M.<secret> NAME [ARG]\n", then its body with "|" before every line, then one "\n".
# Host text (a file, a process's argv) only ever appears after a "|", so it can never start a
# line with the marker; and the marker's secret half is made here, in this shell's memory (never
# in an argv or environment another user can read). Between sections stdout goes to /dev/null:
# every byte the probe prints is framed.
LC_ALL=C
export LC_ALL
words=$(od -An -N16 -tx1 /dev/urandom 2>/dev/null)
secret=''
for w in $words; do secret=$secret$w; done  # od's 16 hex words, joined by the shell
M="$M.$secret"
# A private directory for the section being written (mktemp: a random name, mode 0700); a
# read-only /tmp falls back to /dev/shm, then /run.
probe_tmp=$(mktemp -d "${TMPDIR:-/tmp}/cisaudit-probe.XXXXXXXX" 2>/dev/null ||
  mktemp -d /dev/shm/cisaudit-probe.XXXXXXXX 2>/dev/null || mktemp -d /run/cisaudit-probe.XXXXXXXX) || {
  echo 'cisaudit probe: cannot create a temp dir' >&2
  exit 1
}
trap 'flush; rm -rf "$probe_tmp"' EXIT
trap 'exit 129' HUP INT TERM  # a lost connection: still remove the temp dir
exec 3>&1 >/dev/null
# sec NAME [ARG]: the marker line; the body goes to a private file until `end`. With a secret,
# one file holds every section (body between <SECRET and >SECRET), framed by one sed at exit.
if [ -n "$secret" ]; then
  sec() { printf '%s %s\n<%s\n' "$M" "$*" "$secret" >>"$probe_tmp/all"; exec >>"$probe_tmp/all"; }
  end() { printf '>%s\n' "$secret"; exec >/dev/null; }
else
  sec() { printf '%s %s\n' "$M" "$*" >&3; exec >"$probe_tmp/body"; }
  end() {
    exec >/dev/null
    if [ -s "$probe_tmp/body" ]; then sed 's/^/|/' "$probe_tmp/body" >&3; fi
    printf '\n' >&3
  }
fi
flush() {  # a body's last line ends in >SECRET: "|" before it unless nothing else is on it
  [ ! -f "$probe_tmp/all" ] || sed "/^<$secret\$/,/>$secret\$/{
/^<$secret\$/d
/>$secret\$/{
s/>$secret\$//
/^\$/b
}
s/^/|/
}" "$probe_tmp/all" >&3
}
# root_process PID: the process exists, every uid of it is 0 and its program is root's: a process
# another user runs (whatever it calls itself) is not.
root_process() {
  case $1 in '' | 0 | *[!0-9]*) return 1 ;; esac
  [ "$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$1/status" 2>/dev/null)" = 0000 ] &&
    [ "$(stat -L -c %u "/proc/$1/exe" 2>/dev/null)" = 0 ]
}
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
# dump_each NAME FILE [NAME FILE]...: `dump NAME FILE` of each pair, the files with lines read by
# one awk (a process per file is dear where thousands of rules tax every exec's failed lookups:
# kernel-behaviour.md). Only for files read as lines: awk gives a missing last newline back and
# keeps no NUL byte. Without a secret (or for a file empty or not readable) each is `dump`ed.
dump_each() {
  names='' n=$#
  while [ "$n" -gt 1 ]; do  # each pair off the front; the files to read go to the back
    name=$1 f=$2; shift 2; n=$((n - 2))
    if [ -n "$secret" ] && [ -s "$f" ] && [ -f "$f" ] && [ -r "$f" ]; then set -- "$@" "$f"; names="$names$name
"; else dump "$name" "$f"; fi
  done
  # M and S in awk's environment: readable by this user only, as this shell's memory is.
  [ $# -eq 0 ] || M=$M S=$secret N=$names awk '
    BEGIN { split(ENVIRON["N"], name, "\n") }
    FNR == 1 { if (NR > 1) printf ">%s\n", ENVIRON["S"]; printf "%s %s %s\n<%s\n", ENVIRON["M"], name[++k], FILENAME, ENVIRON["S"] }
    { print }
    END { if (NR) printf ">%s\n", ENVIRON["S"] }' "$@" >>"$probe_tmp/all"
}
# dump_line NAME FILE: `dump` of a file of one line, read by the shell: no process (a /proc file,
# which stat says is empty); `dump` where it is not one whole line.
dump_line() {
  line='' more=''
  if { IFS= read -r line && ! IFS= read -r more && [ -z "$more" ]; } 2>/dev/null <"$2"; then
    sec "$1" "$2"; printf '%s\n' "$line"; end
  else dump "$1" "$2"
  fi
}
# stat_paths P...: paths (any byte but NUL) in NUL-framed sections (kernel-behaviour.md, "Probe").
# GNU stat: `args` (PATH\0 each), `lstat` (KIND MODE UID GID\0PATH\0 of those that exist, %F).
# busybox: `paths` (KIND\0PATH\0 each, test builtins), `modes` (MODE UID GID PATH\0 that exist).
# Both: `targets`, each one's readlink -m\0 in order, then readlink's exit code.
stat_paths() {
  if stat --printf '' -- / 2>/dev/null; then
    sec args; printf '%s\0' "$@"; end
    sec lstat; lstat_all "$@"; end
  else
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
    sec modes; stat --printf '%a %u %g %n\0' -- "$@" 2>/dev/null; end
  fi
  sec targets
  if readlink -z -m -- / >/dev/null 2>&1; then
    readlink -z -m -- "$@" 2>/dev/null; printf '%s' "$?"
  else  # no GNU readlink (busybox): one call per path
    for p in "$@"; do printf '%s\0' "$(readlink -f "$p" 2>/dev/null)"; done; printf 0
  fi
  end
}
# lstat_all P...: stat's records of those that exist, also in $probe_tmp/lstat (stdbuf: an
# absent one's error in 1 write).
lstat_all() {
  stdbuf -eL stat --printf '%F %a %u %g\0%n\0' -- "$@" >"$probe_tmp/lstat" 2>/dev/null
  [ "$?" -lt 125 ] || stat --printf '%F %a %u %g\0%n\0' -- "$@" >"$probe_tmp/lstat" 2>/dev/null
  cat "$probe_tmp/lstat"
}
# stat_lines FILE: stat_paths for the newline-free paths of FILE (with_ancestors'); no stat of
# what unlisted leaves out; readlink -m only of symlinks (`links`, `targets`; probe.py does the
# rest). The paths stay in files: a shell builtin's loop over thousands of arguments costs more
# than a process under TCG.
stat_lines() {
  if ! stat --printf '' -- / 2>/dev/null || ! readlink -z -m -- / >/dev/null 2>&1; then
    by_line stat_paths "$(cat "$1")"
    return
  fi
  sec args; tr '\n' '\0' <"$1"; end
  sec lstat
  by_line lstat_all "$(unlisted "$1")"
  tr '\0' '\n' <"$probe_tmp/lstat" | awk 'NR % 2 { l = /^symbolic link / } !(NR % 2) && l' >"$probe_tmp/links"
  end
  by_file resolve_links "$probe_tmp/links"
}
by_line() {  # CMD LINES: CMD with one argument per line (globbing off)
  c=$1
  set -f
  IFS='
'
  # shellcheck disable=SC2086
  set -- $2
  unset IFS
  set +f
  "$c" "$@"
}
by_file() {  # CMD FILE: CMD with one argument per line of FILE, read by the shell (a short file)
  c=$1 f=$2
  set --
  if [ -f "$f" ]; then while IFS= read -r l; do set -- "$@" "$l"; done <"$f"; fi
  "$c" "$@"
}
resolve_links() {
  sec links; [ "$#" -eq 0 ] || printf '%s\0' "$@"; end
  sec targets
  if [ "$#" -gt 0 ]; then readlink -z -m -- "$@" 2>/dev/null; printf '%s' "$?"; else printf 0; fi
  end
}
# plain_dir(P): the directory of a plain path (absolute, no //, . or ..), else "".
# shellcheck disable=SC2016 # awk programs
plain='function plain_dir(x) { if (x !~ /^(\/[^\/]+)+$/ || x ~ /\/\.\.?(\/|$)/) return ""; sub(/\/[^\/]*$/, "", x); return x == "" ? "/" : x }'
# with_ancestors FILE [INPUT...]: the absolute lines of stdin (then of each INPUT) and every one's
# ancestors, each once, into FILE (stat_lines' input); and into FILE.crowded, counted in the same
# pass (a pass over thousands of paths costs a guest under TCG as much as a process), the
# directories of over LIST_ABOVE of them.
with_ancestors() {
  out=$1; shift
  C="$out.crowded" awk -v above="${LIST_ABOVE:-32}" "$plain"'
    BEGIN { crowded = ENVIRON["C"]; printf "" >crowded }
    /^\// { p = $0; while (p != "" && !seen[p]++) {
      print p
      d = plain_dir(p); if (d != "" && ++n[d] == above + 1) print d >crowded
      sub(/\/[^\/]*$/, "", p)
    } }' - "$@" >"$out"
}
# unlisted FILE: the lines of FILE but the plain paths missing from the listing of their
# directory, if it is crowded (with_ancestors' FILE.crowded); all of them if find reports an error.
unlisted() {
  : >"$probe_tmp/entries"
  by_file list_dirs "$1.crowded" >"$probe_tmp/dirs" || : >"$probe_tmp/dirs"
  awk "$plain"' FILENAME == ARGV[1] { dir[$0]; next } FILENAME == ARGV[2] { there[$0]; next }
    { d = plain_dir($0) } d != "" && (d in dir) && !($0 in there) { next } 1' "$probe_tmp/dirs" "$probe_tmp/entries" "$1"
}
list_dirs() {  # DIR...: those that are readable directories, their entries in $probe_tmp/entries
  [ "$#" -gt 0 ] && by_line list_entries "$(find -H "$@" -maxdepth 0 -type d -readable -print 2>/dev/null)"
}
list_entries() {
  [ "$#" -gt 0 ] && find -H "$@" -mindepth 1 -maxdepth 1 -printf '%p\n' >"$probe_tmp/entries" 2>"$probe_tmp/errors" &&
    ! [ -s "$probe_tmp/errors" ] && printf '%s\n' "$@"
}
