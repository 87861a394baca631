# cisaudit follow-up stat: paths the probe could not know in advance (a config naming an odd path).
# POSIX sh, read-only. cisaudit/host/probe.py composes: M and STAT_ARGS (the paths, each quoted
# for the shell by shlex, so any byte but NUL survives), preamble.sh, probe-lib.sh, this file.
# shellcheck shell=sh
eval "set -- $STAT_ARGS"
stat_paths "$@"
sec 'done'; end
