# cisaudit: the first piece of every host-side script (cisaudit/host/shell.py compose() puts it
# right after the caller's NAME='value' assignments). POSIX sh.
# shellcheck shell=sh
# sudo, SSM and non-login shells can hand us a PATH without the sbin directories where auditctl
# lives: append the standard directories, so that a PATH set by the caller (or a test's fake
# auditctl first on it) still wins.
PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH
