# cisaudit probe: everything the checks need, in ONE command. POSIX sh, read-only.
# The caller prepends: M='@@<nonce>' BINARIES='dockerd ...' UNITS='docker.service ...'
#                      PATHS='/run/containerd ...'
# Output: sections, each a line "$M NAME [ARG]" then the raw body then one newline.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
LC_ALL=C
export PATH LC_ALL
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
# stat_paths P...: one line per distinct path and its parent: path, kind, resolved target.
# Forks are dear in an emulated guest (~40 ms each): kinds come from test builtins and every
# target from a single readlink.
stat_paths() {
  set -f  # paths are data: no globbing
  paths=$(for p in "$@"; do printf '%s\n%s\n' "$p" "${p%/*}"; done | awk 'NF && !seen[$0]++')
  if readlink -m -- / >/dev/null 2>&1; then
    targets=$(readlink -m -- $paths 2>/dev/null)
  else  # no GNU readlink (busybox): one call per path
    targets=$(for p in $paths; do readlink -f "$p" 2>/dev/null || echo; done)
  fi
  for p in $paths; do
    if [ -L "$p" ]; then k=symlink
    elif [ -d "$p" ]; then k=dir
    elif [ -S "$p" ]; then k=socket
    elif [ -e "$p" ]; then k=file
    else k=absent
    fi
    printf '%s\t%s\n' "$p" "$k"
  done | T="$targets" awk 'BEGIN { n = split(ENVIRON["T"], t, "\n") } { print $0 "\t" (NR <= n ? t[NR] : "") }'
  set +f
}

sec uid; id -u; end
sec arch; uname -m; end
sec auditctl; command -v auditctl; end
run auditctl-s auditctl -s
run auditctl-l auditctl -l
sec auditd; command -v auditd; end
sec awk; readlink -f "$(command -v awk)"; end
sec auditd-pid; pidof auditd 2>/dev/null || pgrep -x auditd 2>/dev/null; end

if [ -d /run/systemd/system ]; then
  sec systemd; echo running; end
  run auditd-unit systemctl cat auditd.service
  # One call for all units: a FragmentPath= line per unit, in order (empty when it does not exist).
  set -f
  sec units; systemctl show -p FragmentPath $UNITS 2>/dev/null | sed -n 's/^FragmentPath=//p'; end
  set +f
else
  sec systemd; echo absent; end
  # No manager to ask: read the unit files in systemd's search order.
  for d in /etc/systemd/system /run/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
    if [ -f "$d/auditd.service" ]; then dump auditd-unit-file "$d/auditd.service"; break; fi
  done
  for d in /etc/systemd/system /run/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
    for f in "$d"/auditd.service.d/*.conf; do dump auditd-unit-file "$f"; done
  done
  for u in $UNITS; do
    sec unit "$u"
    for d in /etc/systemd/system /run/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
      if [ -e "$d/$u" ]; then echo "$d/$u"; break; fi
    done
    end
  done
fi

# Rules files in augenrules' own order (it runs `ls -1v`).
sec rules-d-order
if [ -d /etc/audit/rules.d ]; then
  (cd /etc/audit/rules.d && ls -1v 2>/dev/null || ls -1) | grep '\.rules$'
fi
end
for f in /etc/audit/rules.d/*.rules; do dump rules-file "$f"; done
dump audit-rules /etc/audit/audit.rules
dump daemon-json /etc/docker/daemon.json
dump containerd-config /etc/containerd/config.toml

for b in $BINARIES; do sec binary "$b"; command -v "$b"; end; done

# Paths to stat: the benchmark's, the ones the host's config names, and every
# path a rules file names (a rule on a missing path breaks loading).
data_root=$(sed -n 's/.*"data-root"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' \
  /etc/docker/daemon.json 2>/dev/null | head -n 1)
sock=$(awk '/^[[:space:]]*\[/ { g = ($0 ~ /^[[:space:]]*\[grpc\]/) }
  g && /^[[:space:]]*address[[:space:]]*=/ { sub(/^[^=]*=[[:space:]]*"/, ""); sub(/".*/, ""); print; exit }' \
  /etc/containerd/config.toml 2>/dev/null)
rule_paths=$(cat /etc/audit/rules.d/*.rules /etc/audit/audit.rules 2>/dev/null | awk '
  { for (i = 1; i < NF; i++) {
      if ($i == "-w" || $i == "-W") print $(i + 1)
      if ($i == "-F" && $(i + 1) ~ /^(path|dir)=/) { v = $(i + 1); sub(/^[a-z]*=/, "", v); print v }
  } }')
sec paths
set -f
stat_paths $PATHS $data_root $sock $rule_paths $(for b in $BINARIES; do command -v "$b"; done) \
  $(for u in $UNITS; do for d in /etc/systemd/system /run/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
      echo "$d/$u"; done; done)
set +f
end
sec done; end
