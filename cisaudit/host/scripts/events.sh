# cisaudit --verify-events: one harmless access of each permission class, each by its own process
# announced with its pid, then the events auditd wrote with the key (cisaudit/host/events.py says
# why each access is made the way it is). POSIX sh.
# cisaudit/host/events.py composes: assignments, preamble.sh (PATH), this file. The assignments:
#   MARK      the line prefix of every announcement
#   CHECKS    CLASSES SUBTREE PATH per check, each word quoted for the shell (shlex): CLASSES is
#             some of r w x a, SUBTREE 1 to access a file inside the directory too
#   EXTRA     more sh run after the accesses (it may use `spawned`); usually empty
#   SENTINEL  the user message whose arrival in the log ends the wait
#   TIMEOUT   seconds to wait for it at most
#   KEY       the audit keys whose events are printed, separated by blanks; empty: any key
# shellcheck shell=sh
LC_ALL=C
export LC_ALL
start=$(date '+%x %T')
big=$(head -c $(( $(getconf PAGESIZE) * 32 )) /dev/zero | tr '\0' x)
# CISAUDIT_X (e2big or nomem, see events.py) may be preset by the self-tests.
if [ -z "${CISAUDIT_X:-}" ]; then
  /nonexistent-cisaudit-events "$big" 2>/dev/null
  if [ $? = 127 ]; then CISAUDIT_X=e2big; else CISAUDIT_X=nomem; fi
fi
# spawned LABEL PATH: announce the process just started in the background, and wait for it.
spawned() { printf '%s trigger %s %s %s\n' "$MARK" "$1" "$!" "$2"; wait "$!"; }
# access CLASS PATH: one harmless access of that permission class, by a new process.
# shellcheck disable=SC3045 # ulimit -c/-v: not POSIX, but dash, bash and busybox sh all have them
access() {
  case $1 in
  r) dd if="$2" of=/dev/null bs=1 count=0 2>/dev/null & ;;
  w) dd if=/dev/null of="$2" oflag=append conv=notrunc,nocreat count=0 2>/dev/null & ;;
  x) if [ "$CISAUDIT_X" = e2big ]; then "$2" "$big" 2>/dev/null &
     else (ulimit -c 0; ulimit -v 1; exec "$2") 2>/dev/null & fi ;;
  a) chmod "$(stat -L -c %a -- "$2")" -- "$2" 2>/dev/null & ;;
  esac
  spawned "$1" "$2"
}
# locked P: P itself (a final symlink not followed) is root's (or ours), and, a directory, no
# other user may change what is in it: not writable by others, nor by a group other than root's.
# (Writing a file or a socket, a docker group may, changes bytes, not which file we access.)
me=$(id -u)
# shellcheck disable=SC2046 # stat's fields are split on purpose
locked() {
  set -- $(stat -c '%u %g %A' -- "$1" 2>/dev/null)
  [ "$#" = 3 ] && { [ "$1" = 0 ] || [ "$1" = "$me" ]; } || return 1
  case $3 in
  d???????w*) return 1 ;;     # writable by others (sticky /tmp too)
  d????w*) [ "$2" = 0 ] ;;     # writable by its group: root's group only
  esac
}
# trusted PATH: every component of PATH, and of what it resolves to, is locked: no user but root
# can redirect an access made there (swap in a symlink, a FIFO, another file) while we make it.
trusted() {
  for t in "$1" "$(readlink -f -- "$1")"; do
    case $t in /*) ;; *) return 1 ;; esac
    while :; do
      while [ "$t" != / ] && [ "${t%/}" != "$t" ]; do t=${t%/}; done
      locked "$t" || return 1
      [ "$t" = / ] && break
      t=${t%/*}
      t=${t:-/}
    done
  done
}
# accesses CLASSES PATH: access PATH once per class, in order; a PATH another user could
# change is refused, not accessed (root would follow whatever that user put there).
accesses() {
  if ! trusted "$2"; then printf '%s refused 0 %s\n' "$MARK" "$2"; return; fi
  classes=$1
  while [ -n "$classes" ]; do
    c=${classes%"${classes#?}"}
    classes=${classes#?}
    access "$c" "$2"
  done
}
# first_file DIR: a regular file in DIR, to show a watch on DIR covers what is inside.
first_file() {
  for e in "$1"/* "$1"/.[!.]*; do
    if [ -f "$e" ] && [ ! -L "$e" ]; then printf '%s\n' "$e"; return; fi
  done
}
eval "set -- $CHECKS"
while [ "$#" -ge 3 ]; do
  accesses "$1" "$3"
  if [ "$2" = 1 ]; then
    f=$(first_file "$3")
    if [ -n "$f" ]; then accesses "$1" "$f"; fi
  fi
  shift 3
done
if [ -n "$EXTRA" ]; then eval "$EXTRA"; fi
auditctl -m "$SENTINEL" >/dev/null 2>&1
end=$(( $(date +%s) + TIMEOUT ))
while [ "$(date +%s)" -lt "$end" ]; do
  # shellcheck disable=SC2086 # $start is a date and a time: two arguments
  ausearch --input-logs -m USER --start $start 2>/dev/null | grep -qF "$SENTINEL" && break
  sleep 0.1
done
echo "$MARK events"
# Only the records and fields the parser reads: SSM returns just 24,000 characters of output.
# (Audit writes a name with spaces or odd bytes in hex, so splitting on blanks is safe.)
# shellcheck disable=SC2086 # $start: as above; KEY: one key per word
for k in ${KEY:-@any}; do
  if [ "$k" = @any ]; then ausearch --input-logs --start $start 2>/dev/null
  else ausearch --input-logs -k "$k" --start $start 2>/dev/null; fi
done | awk '/^type=(SYSCALL|PATH) / { s = $1 " " $2;
  for (i = 3; i <= NF; i++) if ($i ~ /^(arch|syscall|exit|pid|name)=/) s = s " " $i; print s }'
