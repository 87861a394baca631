# cisaudit probe: everything the checks need, in ONE command. POSIX sh, read-only.
# The caller prepends: M='@@<nonce>' BINARIES='dockerd ...' UNITS='docker.service ...'
#                      SOCKETS='docker.socket' EXCLUDES='volumes overlay2' (data-root subdirectories)
#                      PATHS='/run/containerd ...' KERNEL_RULES_PY='<cisaudit/host/kernel_rules.py>'
#                      KERNEL_RULES_PL='<cisaudit/host/kernel_rules.pl>'
#                      UNIT_DIRS='/etc/systemd/system ...' (systemd's unit search path, in order:
#                      cisaudit/model/locate.py UNIT_DIRS), TMPFILES_DIRS (tmpfiles.d's, in order:
#                      cisaudit/model/boot.py), DEFAULT_DATA_ROOT (model/locate.py), AUDIT_RULES
#                      (the file auditctl -R loads at boot: model/loader.py)
# Output: sections, framed by probe-lib.sh (each body line escaped, the marker secret).
# host/probe.py composes: assignments, preamble.sh, probe-lib.sh, probe-guess.sh, this file.
LC_ALL=C
export LC_ALL
hash awk stat find tr ls pidof cat sed sort 2>/dev/null  # once: subshells inherit (kernel-behaviour.md)
sec uid; id -u; end
arch=$(uname -m)
sec arch; printf '%s\n' "$arch"; end
sec auditctl; command -v auditctl; end
status=$(auditctl -s 2>&1); sec auditctl-s "$?"; printf '%s' "$status"; end
sec auditd; command -v auditd; end
sec awk; readlink -f "$(command -v awk)"; end
# The process the kernel sends its records to (auditctl -s: pid), when it is alive and root's: any
# user can start a process named auditd.
sec auditd-pid
kernel_pid=''
while read -r k v _; do if [ "$k" = pid ]; then kernel_pid=$v; break; fi; done <<EOF
$status
EOF
if root_process "$kernel_pid"; then echo "$kernel_pid"; fi
end

# unit_files N: systemctl show's blocks (stdin) copied to stdout; the files `systemctl cat` would
# print for the first N units (fragment, then drop-ins; none for a masked unit) into unit-files,
# and those of the units after the first two (the sockets) into socket-files too. DropInPaths
# puts a path with a blank or quote in "..." with \-escapes (systemd's shell_maybe_quote).
unit_files() {
  # shellcheck disable=SC2154 # probe-lib.sh's
  U="$probe_tmp/unit-files" S="$probe_tmp/socket-files" awk -v n="$1" '
    function out(f) { print f >u; if (b >= 2) print f >s }
    function flush(  i, c, t, q, e, any) {
      if (b < n && load != "masked") {
        if (frag != "") out(frag)
        t = ""; q = e = any = 0
        for (i = 1; i <= length(drop); i++) {
          c = substr(drop, i, 1)
          if (e) { t = t c; e = 0 } else if (q && c == "\\") e = 1
          else if (c == "\"") { q = !q; any = 1 }
          else if (c == " " && !q) { if (t != "" || any) out(t); t = ""; any = 0 }
          else t = t c
        }
        if (t != "" || any) out(t)
      }
      b++; load = frag = drop = ""
    }
    BEGIN { u = ENVIRON["U"]; s = ENVIRON["S"]; printf "" >u; printf "" >s }
    { print }
    /^$/ { flush(); next }
    /^LoadState=/ { load = substr($0, 11) }
    /^FragmentPath=/ { frag = substr($0, 14) }
    /^DropInPaths=/ { drop = substr($0, 13) }
    END { flush() }'
}
# The path a socket unit's ListenStream= line names (sed), and those of the unit files FILE...
listen_stream='s/^[[:space:]]*ListenStream[[:space:]]*=[[:space:]]*\(\/.*\)/\1/p'
listen_paths() { [ $# -eq 0 ] || sed -n "$listen_stream" "$@" 2>/dev/null; }
: >"$probe_tmp/listen"
if [ -d /run/systemd/system ]; then
  sec systemd; echo running; end
  # One systemctl for every unit, not a `systemctl cat` or `is-enabled` each (about 0.15 s of CPU
  # each in a guest under TCG): a block per unit, in this order (host/probe.py _unit_show).
  set -f
  # shellcheck disable=SC2086 # SOCKETS, UNITS (set by cisaudit/host/probe.py): unit names, globbing off
  systemctl show -p Names -p LoadState -p UnitFileState -p FragmentPath -p DropInPaths \
    auditd.service audit-rules.service $SOCKETS $UNITS >"$probe_tmp/show" 2>/dev/null
  # shellcheck disable=SC2086
  set -- $SOCKETS
  set +f
  sec unit-show
  unit_files "$((2 + $#))" <"$probe_tmp/show"
  end
  by_file listen_paths "$probe_tmp/socket-files" >"$probe_tmp/listen"
  # The unit files go out with the other files read as lines, below (one awk).
  set --
  while IFS= read -r f; do set -- "$@" unit-file "$f"; done <"$probe_tmp/unit-files"
else
  set --
  sec systemd; echo absent; end
  # No manager to ask: read the unit files in systemd's search order.
  for d in $UNIT_DIRS; do
    if [ -f "$d/auditd.service" ]; then dump auditd-unit-file "$d/auditd.service"; break; fi
  done
  for d in $UNIT_DIRS; do
    for f in "$d"/auditd.service.d/*.conf; do dump auditd-unit-file "$f"; done
  done
  for u in $UNITS; do
    sec unit "$u"
    for d in $UNIT_DIRS; do
      if [ -e "$d/$u" ]; then echo "$d/$u"; break; fi
    done
    end
  done
  sec auditd-enabled; systemctl is-enabled auditd.service 2>/dev/null; end
  # Socket units in systemd's search order, drop-ins included: their ListenStream= is the socket.
  for u in $SOCKETS; do
    text=$(for d in $UNIT_DIRS; do
      if [ -f "$d/$u" ]; then cat "$d/$u"; break; fi; done
      for d in $UNIT_DIRS; do
        for f in "$d/$u.d"/*.conf; do if [ -f "$f" ]; then cat "$f"; fi; done; done)
    sec socket-unit "$u"; printf '%s' "$text"; end
    printf '%s\n' "$text" | sed -n "$listen_stream" >>"$probe_tmp/listen"
  done
fi

dump_line cmdline /proc/cmdline
dump_line boot-id /proc/sys/kernel/random/boot_id
dump mounts /proc/self/mounts
# tmpfiles.d in systemd's order: what exists on /run before auditd loads the rules at boot.
for d in $TMPFILES_DIRS; do
  for f in "$d"/*.conf; do  # a link to /dev/null masks a file of the same name
    if [ -f "$f" ]; then set -- "$@" tmpfiles-file "$f"; elif [ -e "$f" ]; then sec tmpfiles-masked "$f"; end; fi
  done
done
# With the unit files (systemd's), and the remap ranges (docs/benchmarks.md): one awk.
dump_each "$@" subuid /etc/subuid subgid /etc/subgid

# Rules files in augenrules' own order (it runs `ls -1v`; `ls -1` where ls has no -v), the names
# that end in .rules (grep '\.rules$', as augenrules; by the shell, no process).
ls_v=no
: >"$probe_tmp/order"
if [ -d /etc/audit/rules.d ]; then
  if (cd /etc/audit/rules.d && ls -1v) >"$probe_tmp/order" 2>/dev/null; then ls_v=yes
  else (cd /etc/audit/rules.d && ls -1) >"$probe_tmp/order" 2>/dev/null; fi
fi
sec rules-d-order
while IFS= read -r n; do case $n in *.rules) printf '%s\n' "$n" ;; esac; done <"$probe_tmp/order"
end
for f in /etc/audit/rules.d/*.rules; do
  # augenrules' cat fails on a directory (or fifo) named *.rules and the merge goes on: not an error here.
  if [ -e "$f" ] && [ ! -f "$f" ]; then sec rules-d-special "$f"; end; else dump rules-file "$f"; fi
done
dump audit-rules "$AUDIT_RULES"
dump daemon-json /etc/docker/daemon.json

# --- Loader versions (cisaudit/model/userspace.py; owned by the loader model) ---
run audit-version auditctl -v
# Only the lines of the host's augenrules that say how it merges (cisaudit/model/userspace.py reads them).
if augenrules=$(command -v augenrules 2>/dev/null); then
  sec augenrules "$augenrules"; grep -e 'ls -1v' -e 'sort -zV' -e 'sub(/' -e 'minus_e = ""' "$augenrules"; end
fi
# augenrules before 4.2 word-splits `ls -1v | grep .rules$`: `50 docker.rules` cats rules.d/50 and
# rules.d/docker.rules. Dump the regular files such words name that the *.rules loop above did not.
if [ "$ls_v" = yes ]; then
  set -f
  while IFS= read -r n; do
    case $n in *.rules) ;; *) continue ;; esac
    # shellcheck disable=SC2086 # word-splitting names is what augenrules does
    for w in $n; do
      case $w in *.rules) ;; *) if [ -f "/etc/audit/rules.d/$w" ]; then dump rules-d-word "/etc/audit/rules.d/$w"; fi ;; esac
    done
  done <"$probe_tmp/order"
  set +f
fi
# auditctl -R checks the file it reads: owner (3.0.9) and world-writable (3.0.9, 4.1.4+).
sec audit-rules-stat; stat -L -c '%a %u' "$AUDIT_RULES" 2>/dev/null; end
# --- end of loader versions ---
# dockerd's own command line (--data-root, --userns-remap) and the remap ranges (docs/benchmarks.md).
# Only root's daemon: any user can run a process named dockerd with a --data-root of its choosing.
# Checked before and after the read, so a pid that changed hands in between is ignored too.
dockerd_pids=$(pidof dockerd 2>/dev/null)
for p in $dockerd_pids; do
  if root_process "$p"; then
    dump dockerd-cmdline "/proc/$p/cmdline"
    if root_process "$p"; then break; fi
  fi
  sec dockerd-ignored "$p"; awk '/^Uid:/ { print $2 }' "/proc/$p/status" 2>/dev/null; end
done
dump containerd-config /etc/containerd/config.toml

# Each looked up once, its path read back by the shell (a command substitution forks).
bins=''
for b in $BINARIES; do
  w=''
  if command -v "$b" >"$probe_tmp/which"; then IFS= read -r w <"$probe_tmp/which"; bins="$bins$w
"; fi
  sec binary "$b"; [ -z "$w" ] || echo "$w"; end
done

# The kernel's rules are read last but for the paths they name: first its own list, each rule
# whole (kernel_rules.py, .pl: the same output; python3 -I -S, else perl, the system's before
# PATH's: a pyenv shim's lookups are dear with thousands of rules, docs/kernel-behaviour.md).
# Read whole (the reader exits 0), it is the listing too (model/kernel_list.py renders it as
# auditctl -l prints it) and auditctl -l is not run: each read makes the kernel build a message
# per rule, and auditctl spends three syscalls on each, dear on a host with thousands of rules.
# The reader also writes the paths its rules name and the syscall numbers they hold (both
# readers say how): the pass over the rules files below need not read its thousands of lines.
listing=$probe_tmp/listing
named=$probe_tmp
# sys_cmd NAME: cmd=/usr/bin/NAME or /bin/NAME, else PATH's (no subshell where it is the system's).
sys_cmd() {
  for cmd in "/usr/bin/$1" "/bin/$1"; do if [ -f "$cmd" ] && [ -x "$cmd" ]; then return 0; fi; done
  cmd=$(command -v "$1")
}
reader=''
if sys_cmd python3; then reader=python3; elif sys_cmd perl; then reader=perl; fi
# Straight into its section. A reader that wrote its files read the list whole; else (none, or
# it failed) they are empty.
whole=no
if [ -n "$reader" ]; then
  sec kernel-rules
  if [ "$reader" = python3 ]; then "$cmd" -I -S -c "$KERNEL_RULES_PY" "$named/kernel-paths" "$named/rule-numbers"
  else "$cmd" -e "$KERNEL_RULES_PL" "$named/kernel-paths" "$named/rule-numbers"; fi 2>/dev/null && whole=yes
  end
fi
[ "$whole" = yes ] || { : >"$named/kernel-paths"; : >"$named/rule-numbers"; }
# Else the listing, to a file, not a shell variable: a command substitution reads its pipe 128
# bytes a call (dash), and every later fork would copy it. auditctl ignores a receive that fails
# (ENOBUFS, thousands of rules) and lists what it got, exit 0 (model/loader.py
# listing_shortfall): asked again, twice at most, when it said so (on stderr).
if [ "$whole" = no ]; then
  list_rules() { auditctl -l >"$listing" 2>"$listing.err"; rc=$?; }
  said_it_could_not_receive() {
    while IFS= read -r line; do
      case $line in *"Error receiving audit netlink packet"*) return 0 ;; esac
    done <"$listing.err"
    return 1
  }
  list_rules
  for _ in 1 2; do if said_it_could_not_receive; then list_rules; else break; fi; done
  sec auditctl-l "$rc"; cat "$listing" "$listing.err"; end
fi
if [ -z "$reader" ]; then
  # Neither: births of -w paths and the boot time (model/loader.py added_on_a_directory)
  sec boot-time; sed -n 's/^btime //p' /proc/stat; end
  sec watch-births
  sed -n 's/^-w \(.*\) -p [rwxa]*\( -k .*\)\{0,1\}$/\1/p' "$listing" | {
    set --; while IFS= read -r w; do set -- "$@" "$w"; done
    [ $# -eq 0 ] || stat -c '%W %n' -- "$@" 2>/dev/null
  }
  end
fi
# The paths and -S names of the rules files and the listing (when auditctl -l ran), in one pass,
# each once (in the order first named): augenrules' audit.rules repeats rules.d line for line.
# The kernel's list's paths and syscall numbers are the reader's kernel-paths and rule-numbers
# (paths with a %XX byte left out: the rendered listing's rules on such paths go unstat'ed).
: >"$named/rule-paths"; : >"$named/rule-syscalls"
cat /etc/audit/rules.d/*.rules "$AUDIT_RULES" "$listing" 2>/dev/null |
  P="$named/rule-paths" S="$named/rule-syscalls" awk '
  BEGIN { p = ENVIRON["P"]; s = ENVIRON["S"] }
  line[$0]++ { next }
  { for (i = 1; i < NF; i++) if ($i ~ /^-[wWFS]$/) {
      v = $(i + 1)
      if ($i == "-S") {
        k = split(v, a, ",")
        for (j = 1; j <= k; j++) if (!(a[j] in syscall)) { syscall[a[j]]; print a[j] > s }
      } else if ($i == "-F" && !sub(/^(path|dir)=/, "", v)) continue
      else if (!(v in path)) { path[v]; print v > p }
  } }'
# Paths to stat: the benchmark's, the ones the host's config names, every path a rules file or
# the kernel's listing names (a rule on a missing path breaks loading), and each one's parent.
# All of these are single-line tokens; paths from elsewhere go to a follow-up stat_paths.
# Which paths the configs name is guessed (probe-guess.sh says why and how far to trust it).
data_root=$(guess_data_root /etc/docker/daemon.json)
sock=$(guess_containerd_socket /etc/containerd/config.toml)
# Into a file, not this shell's memory (the forks after it stay cheap; stat_lines reads it).
set -f
{
  # shellcheck disable=SC2086,SC2153 # PATHS (set by cisaudit/host/probe.py): one path per word, globbing off
  printf '%s\n' $PATHS "$data_root" "$sock"
  for x in $EXCLUDES; do printf '%s\n' "${data_root:-$DEFAULT_DATA_ROOT}/$x"; done
  printf '%s' "$bins"
  for u in $UNITS; do for d in $UNIT_DIRS; do
    echo "$d/$u"; done; done
} | with_ancestors "$named/paths" "$named/rule-paths" "$named/kernel-paths" "$probe_tmp/listen"
# --- kernel filter model (cisaudit/model/kernel.py kernel_facts): syscall numbers and LSMs -------
# CLASS_SYSCALLS (set by cisaudit/host/probe.py): the syscalls of the kernel's permission classes.
# The numbers this host's auditctl gives syscall names (ausyscall reads the same libaudit tables),
# per ABI the kernel runs, for those names and every -S name the rules files and the listing use,
# and the names of the numbers the kernel's rules hold (model/kernel_list.py names them so).
case $arch in
  x86_64) tables='x86_64 i386' ;;
  aarch64) tables='aarch64 arm' ;;
  ppc64le | ppc64) tables='ppc64 ppc' ;;
  s390x) tables='s390x s390' ;;
  i?86) tables='i386' ;;
  arm*) tables='arm' ;;
  *) tables='' ;;
esac
# shellcheck disable=SC2086 # CLASS_SYSCALLS: one name per word
wanted=$(printf '%s\n' $CLASS_SYSCALLS | sort -u - "$named/rule-syscalls")
for t in $tables; do
  sec syscalls "$t"
  ausyscall "$t" --dump 2>/dev/null | WANTED="$wanted" NUMBERS="$named/rule-numbers" awk '
    BEGIN {
      n = split(ENVIRON["WANTED"], a, "\n"); for (i = 1; i <= n; i++) want[a[i]] = 1
      while ((getline k < ENVIRON["NUMBERS"]) > 0) number[k] = 1
    }
    $1 ~ /^[0-9]+$/ && (($2 in want) || ($1 in number)) { print $1, $2 }'
  end
done
# Which LSMs run: only they can match subj_*/obj_* fields.
# One line, no newline: read by the shell.
if [ -r /sys/kernel/security/lsm ]; then
  sec lsm; { IFS= read -r lsm || [ -n "$lsm" ]; } </sys/kernel/security/lsm; printf '%s' "$lsm"; end
fi
sec lsm-label; if cat /proc/self/attr/current >/dev/null 2>&1; then echo yes; else echo no; fi; end
sec selinux; if [ -e /sys/fs/selinux/enforce ]; then echo yes; else echo no; fi; end
# --- processes auditing may never see (cisaudit/model/unaudited.py) ---
# A task forked while audit was never enabled has no audit context, for life (kernel/auditsc.c
# audit_alloc). Start times (ticks since boot, /proc/PID/stat field 22) of the kernel's auditd and
# of root's dockerd and containerd; the comm field may hold spaces and parentheses.
starts() {  # NAME PID... (the fields after the comm's last ") ", split by the shell: no process)
  n=$1; shift
  for p; do
    if root_process "$p" && IFS= read -r st <"/proc/$p/stat"; then
      set -f
      # shellcheck disable=SC2086 # the fields, one per word
      set -- ${st##*) }
      set +f
      echo "$n $p ${20}"
    fi
  done 2>/dev/null
}
sec process-starts
# shellcheck disable=SC2046,SC2086 # pids, one per word
{ starts auditd $kernel_pid; starts dockerd $dockerd_pids; starts containerd $(pidof containerd 2>/dev/null); }
end
# --- end of the kernel filter model's section --------------------------------------------------
set +f
stat_lines "$named/paths"
sec 'done'; end
