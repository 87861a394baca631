# cisaudit: the first piece of every host-side script (cisaudit/host/shell.py compose() puts it
# right after the caller's NAME='value' assignments). POSIX sh.
# shellcheck shell=sh
# sudo, SSM and non-login shells can hand us a PATH without the sbin directories where auditctl
# lives: append the standard directories it lacks, so that a PATH set by the caller (or a test's
# fake auditctl first on it) still wins, and a tool it lacks is not looked up twice in each (a
# failed lookup is dear on a host with thousands of rules: docs/kernel-behaviour.md).
for std in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  case ":$PATH:" in *":$std:"*) continue ;; esac
  PATH="${PATH:+$PATH:}$std"
done
unset std
export PATH
