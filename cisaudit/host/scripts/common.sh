# cisaudit remediation: definitions shared by apply.sh and backout.sh.
#
# cisaudit/host/remediation_io.py sends "assignments + preamble.sh + common.sh +
# apply.sh" (or backout.sh) to the host as ONE `sh -c` command, so this file only defines
# functions and must not act on its own. POSIX sh: it runs under dash
# (Debian/Ubuntu) and bash-as-sh (RHEL). No `local`: function variables carry
# a prefix of their function instead. Few processes: an emulated guest pays
# about 20 ms per fork+exec, so builtins (read, ${x%% *}) over cat, cut, head.

# shellcheck disable=SC2034 # used by apply.sh and backout.sh
CISAUDIT_COMMON_LOADED=1
# shellcheck disable=SC2034
CA_BEGIN='## BEGIN cisaudit managed block: do not edit by hand, undo with cisaudit backout'
# shellcheck disable=SC2034
CA_END='## END cisaudit managed block'
# shellcheck disable=SC2034
CA_HEADER_PREFIX='## Managed by cisaudit'
# shellcheck disable=SC2034
CA_TMPFILES_CONF="${CISAUDIT_TMPFILES_CONF:-/etc/tmpfiles.d/cisaudit-docker.conf}"

# ---------------------------------------------------------------- setup/output

ca_setup() {
	# PATH: preamble.sh, which remediation_io.py puts before this file.
	LC_ALL=C # byte-wise sort/comm/grep and untranslated tool messages
	export LC_ALL
	umask 077
	CA_NL='
'
	CA_JOURNAL_ROOT="${CISAUDIT_JOURNAL_ROOT:-/var/lib/cisaudit/journal}"
	CA_DRY_RUN="${CISAUDIT_DRY_RUN:-0}"
	CA_OUT=''
	CA_FINISHED=0
	CA_TMP=''
	CA_LOCK_KIND=''
	CA_JDIR=''
	CA_RUN_ID="${CISAUDIT_RUN_ID:-}"
	trap 'ca_on_exit' EXIT
	trap 'ca_on_signal HUP' HUP
	trap 'ca_on_signal INT' INT
	trap 'ca_on_signal TERM' TERM
	# A lost connection closes our stdout and stderr: the next progress line would kill the run
	# by SIGPIPE wherever it is, with no trap run. Caught, the write just fails and the run goes
	# on to its end, its result kept in the journal (result.apply) for a backout. Commands we
	# start get the default SIGPIPE back (a caught signal is reset on exec).
	trap ':' PIPE
	ca_sweep_scratch
	CA_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cisaudit.$$.XXXXXX") || ca_die "cannot create a temp dir"
	# A mistyped dry-run flag must not turn into a real run.
	case "$CA_DRY_RUN" in 0 | 1) ;; *) ca_die "CISAUDIT_DRY_RUN must be 0 or 1, not '$CA_DRY_RUN'" ;; esac
}

# A killed run (SIGKILL runs no trap) leaves its scratch dir behind; the pid
# in the name tells whether its owner is gone. Any user can make a name like
# that in /tmp: only a real directory of our own (mktemp made it) is ours.
ca_sweep_scratch() {
	for ca_old in "${TMPDIR:-/tmp}"/cisaudit.*.*; do
		if [ -L "$ca_old" ] || [ ! -d "$ca_old" ] || [ ! -O "$ca_old" ]; then continue; fi
		ca_opid=${ca_old##*/cisaudit.}
		ca_opid=${ca_opid%%.*}
		case "$ca_opid" in '' | *[!0-9]*) continue ;; esac
		kill -0 "$ca_opid" 2>/dev/null || rm -rf "$ca_old"
	done
}

# Progress goes to stderr; stdout carries only the result block, so it stays
# far below the 24,000 characters SSM returns.
ca_log() { printf 'cisaudit: %s\n' "$*" >&2; }
ca_emit() { CA_OUT="$CA_OUT$*$CA_NL"; }
ca_msg() {
	ca_emit "cisaudit-message: $*"
	ca_log "$*"
}

# ca_finish STATUS EXIT_CODE FIELDS SUMMARY: print the result block and exit.
# Exit codes are 0, 1 or 2 only (SSM reboots the instance on 194).
ca_finish() {
	CA_FINISHED=1
	printf '%s' "$CA_OUT"
	printf 'cisaudit-result: status=%s run_id=%s%s\n' "$1" "${CA_RUN_ID:--}" "${3:+ $3}"
	[ -n "${4:-}" ] && printf '%s\n' "$4"
	if [ -n "$CA_JDIR" ] && [ -d "$CA_JDIR" ] && [ "$CA_DRY_RUN" != 1 ]; then
		# Keep what the caller saw next to the journal, for the audit trail.
		{
			printf '%s' "$CA_OUT"
			printf 'cisaudit-result: status=%s run_id=%s%s\n' "$1" "${CA_RUN_ID:--}" "${3:+ $3}"
		} >"$CA_JDIR/result.${CA_SCRIPT:-run}" 2>/dev/null
	fi
	exit "$2"
}

ca_die() {
	ca_msg "$*"
	ca_finish failed 1 "" "cisaudit: FAILED: $*"
}

# shellcheck disable=SC2317 # called from a trap
ca_on_signal() {
	trap '' HUP INT TERM
	ca_msg "interrupted by SIG$1 in state ${CA_STATE:-none}; journal kept${CA_JDIR:+ at $CA_JDIR}; run backout.sh to undo"
	ca_finish failed 1 "" "cisaudit: interrupted"
}

# shellcheck disable=SC2317 # called from a trap
ca_on_exit() {
	ca_rc=$?
	if [ "$CA_FINISHED" != 1 ]; then
		# set -u or a missing command ended the script early: still say so.
		CA_FINISHED=1
		printf '%scisaudit-message: internal error (exit %s)\ncisaudit-result: status=failed run_id=%s\n' \
			"$CA_OUT" "$ca_rc" "${CA_RUN_ID:--}"
	fi
	ca_unlock
	[ -n "$CA_TMP" ] && rm -rf "$CA_TMP"
}

# ------------------------------------------------------------------- locking

# Two runs on one host must not interleave. flock(1) when present (the kernel
# drops the lock when the process dies, even on SIGKILL); otherwise an atomic
# mkdir with the holder's pid and start time, so a dead holder is detected.
# The lock lives in a directory only root can write: in world-writable
# /run/lock any user could hold it first (blocking every run) or plant a
# symlink that root would follow.
ca_lock() {
	CA_LOCK_PATH="${CISAUDIT_LOCK_PATH:-/run/cisaudit/cisaudit.lock}"
	ca_lock_timeout="${CISAUDIT_LOCK_TIMEOUT:-60}"
	ca_lock_dir_check "$(dirname "$CA_LOCK_PATH")"
	for ca_lp in "$CA_LOCK_PATH" "$CA_LOCK_PATH.d"; do
		[ -L "$ca_lp" ] && ca_die "refusing lock $ca_lp: it is a symlink"
	done
	case "${CISAUDIT_LOCK_METHOD:-auto}" in
	flock) ca_lock_flock ;;
	mkdir) ca_lock_mkdir ;;
	*) if command -v flock >/dev/null 2>&1; then ca_lock_flock; else ca_lock_mkdir; fi ;;
	esac
	ca_log "lock $CA_LOCK_PATH taken ($CA_LOCK_KIND)"
	if [ -n "${CISAUDIT_TEST_SLEEP_LOCKED:-}" ]; then # test hook: hold the lock a while
		sleep "$CISAUDIT_TEST_SLEEP_LOCKED"
	fi
}

# ca_lock_dir_check DIR: create DIR 0700 if missing; refuse a symlink, or a
# directory not owned by us (root) or writable by group or others.
ca_lock_dir_check() {
	[ -L "$1" ] && ca_die "refusing lock directory $1: it is a symlink"
	[ -d "$1" ] || mkdir -m 0700 "$1" 2>/dev/null || [ -d "$1" ] ||
		ca_die "cannot create lock directory $1"
	[ -L "$1" ] && ca_die "refusing lock directory $1: it is a symlink"
	# ls -ldn: mode string and numeric owner, the same in GNU and busybox.
	# shellcheck disable=SC2012,SC2046 # one known directory; its fields are split on purpose
	set -- "$1" $(ls -ldn "$1")
	case "$2" in
	d????w* | d???????w*) ca_die "refusing lock directory $1: writable by group or others ($2)" ;;
	esac
	[ "$4" = "$(id -u)" ] || ca_die "refusing lock directory $1: owned by uid $4, not $(id -u)"
}

ca_lock_busy() {
	ca_die "another cisaudit run holds the host lock $CA_LOCK_PATH ($1); gave up after ${ca_lock_timeout}s. Retry later; if no cisaudit run is active, check that holder."
}

ca_lock_flock() {
	# Open for append: opening must not truncate the holder's owner line.
	# Probe with `true` first: a failed redirection on `exec` ends the shell.
	true 2>/dev/null >>"$CA_LOCK_PATH" || ca_die "cannot open lock file $CA_LOCK_PATH"
	exec 9>>"$CA_LOCK_PATH"
	if ! flock -w "$ca_lock_timeout" 9; then
		ca_lock_busy "$(head -n 1 "$CA_LOCK_PATH" 2>/dev/null)"
	fi
	CA_LOCK_KIND=flock
	ca_owner_line >"$CA_LOCK_PATH" # same inode, so the lock stays
}

ca_owner_line() {
	printf 'pid=%s start=%s run_id=%s since=%s\n' "$$" "$(ca_proc_start "$$")" "${CA_RUN_ID:--}" "$(ca_now)"
}

# Field 22 of /proc/PID/stat (start time in ticks): tells a reused pid apart.
ca_proc_start() {
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

ca_lock_mkdir() {
	ca_ld="$CA_LOCK_PATH.d"
	ca_deadline=$(($(date +%s) + ca_lock_timeout))
	until mkdir "$ca_ld" 2>/dev/null; do
		ca_holder=$(cat "$ca_ld/owner" 2>/dev/null)
		if ca_lock_is_stale "$ca_holder"; then
			# mv is atomic: of two waiters that both saw the stale lock, only
			# one moves it away; the other's mv fails and it waits again.
			if mv "$ca_ld" "$ca_ld.stale.$$" 2>/dev/null; then
				ca_log "removed stale lock ($ca_holder)"
				rm -rf "$ca_ld.stale.$$"
			fi
			continue
		fi
		[ "$(date +%s)" -ge "$ca_deadline" ] && ca_lock_busy "${ca_holder:-owner not yet written}"
		sleep 1
	done
	CA_LOCK_KIND='mkdir'
	ca_owner_line >"$ca_ld/owner"
}

# A holder is stale when its pid is gone or now belongs to another process.
# A dir without owner line is a holder between mkdir and write: stale only
# once it is a minute old.
ca_lock_is_stale() {
	if [ -z "$1" ]; then
		[ -n "$(find "$ca_ld" -maxdepth 0 -mmin +1 2>/dev/null)" ]
		return
	fi
	ca_lpid=$(printf '%s\n' "$1" | sed -n 's/^pid=\([0-9]*\) .*/\1/p')
	ca_lstart=$(printf '%s\n' "$1" | sed -n 's/.* start=\([0-9]*\) .*/\1/p')
	[ -n "$ca_lpid" ] || return 0
	kill -0 "$ca_lpid" 2>/dev/null || return 0
	[ -n "$ca_lstart" ] && [ "$(ca_proc_start "$ca_lpid")" != "$ca_lstart" ]
}

# shellcheck disable=SC2317 # called from the exit trap
ca_unlock() {
	case "$CA_LOCK_KIND" in
	flock)
		true 2>/dev/null >"$CA_LOCK_PATH" # clear the owner line
		exec 9>&-
		;;
	mkdir) rm -rf "$CA_LOCK_PATH.d" ;;
	esac
	CA_LOCK_KIND=''
}

# ------------------------------------------------------------------- helpers

ca_sha256() {
	if [ -f "$1" ]; then
		ca_h=$(sha256sum <"$1")
		[ -z "$ca_h" ] || printf '%s\n' "${ca_h%% *}"
	else
		echo absent
	fi
}

# One rule per line, blanks squeezed and trimmed, so that lines compare the
# way auditctl tokenises them (it splits on whitespace and has no quoting).
ca_normalize() {
	sed 's/[[:space:]][[:space:]]*/ /g; s/^ //; s/ $//' | grep -v '^$'
}

# Accept only rule-adding lines: a stray -D or -e in a plan would wipe or
# freeze the kernel's rules; auditctl rejects a trailing # comment.
ca_check_rule() {
	case "$1" in
	'-w '* | '-a '* | '-A '*) ;;
	*) return 1 ;;
	esac
	case "$1" in *'#'*) return 1 ;; esac
	return 0
}

# The kernel rule list, one rule a line; "No rules" becomes an empty file.
ca_klist() {
	auditctl -l >"$CA_TMP/klist.raw" 2>&1 </dev/null || {
		cat "$CA_TMP/klist.raw" >&2
		return 1
	}
	grep -vx 'No rules' "$CA_TMP/klist.raw" >"$1"
	return 0
}

# Lines of $2 not in $1, counting repeats: a `never` watch and an `always`
# one list alike, so set difference would miss a second identical line.
ca_added_lines() {
	sort "$1" >"$CA_TMP/ms.a"
	sort "$2" >"$CA_TMP/ms.b"
	comm -13 "$CA_TMP/ms.a" "$CA_TMP/ms.b"
}

ca_enabled() {
	auditctl -s 2>/dev/null </dev/null | awk '$1 == "enabled" { print $2; exit }'
}

# Run ids name journal dirs: no slash, no leading dot, bounded length.
ca_valid_id() {
	case "$1" in '' | .* | *[!A-Za-z0-9._-]*) return 1 ;; esac
	[ "${#1}" -le 100 ]
}

ca_reverse() { sed '1!G;h;$!d' "$1"; }

ca_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# ------------------------------------------------------------------ journal

ca_state() {
	CA_STATE=$1
	printf '%s\n' "$1" >"$CA_JDIR/state.tmp" && mv -f "$CA_JDIR/state.tmp" "$CA_JDIR/state"
	printf '%s %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ %s.%N')" "$1" >>"$CA_JDIR/state.log"
	if [ "${CISAUDIT_TEST_KILL_AT:-}" = "$1" ]; then
		# Test hook: die like a killed process would, with no trap run.
		ca_log "test hook: SIGKILL at state $1"
		kill -KILL "$$"
	fi
}

ca_journal_root() {
	if ! mkdir -p "$CA_JOURNAL_ROOT" || ! chmod 0700 "$CA_JOURNAL_ROOT"; then
		ca_die "cannot create journal root $CA_JOURNAL_ROOT"
	fi
}

# Snapshot one file the run may touch into files/N/ of the journal.
ca_snapshot_file() {
	ca_sn=1
	for ca_se in "$CA_JDIR"/files/* "$CA_JDIR"/files/.[!.]* "$CA_JDIR"/files/..?*; do
		if [ -e "$ca_se" ] || [ -L "$ca_se" ]; then ca_sn=$((ca_sn + 1)); fi
	done
	ca_sd="$CA_JDIR/files/$ca_sn"
	mkdir -p "$ca_sd" && printf '%s\n' "$1" >"$ca_sd/path" || return 1
	if [ -L "$1" ]; then
		ca_msg "$1 is a symlink; refusing to replace it"
		return 1
	elif [ -f "$1" ]; then
		cat -- "$1" >"$ca_sd/content" &&
			stat -c '%a %u %g' -- "$1" >"$ca_sd/stat" &&
			ca_sn_hash=$(ca_sha256 "$1") &&
			printf '%s\n' "$ca_sn_hash" >"$ca_sd/sha256.before" || return 1
		# A copy that differs from the file is no backup (file changed under us).
		[ "$(ca_sha256 "$ca_sd/content")" = "$ca_sn_hash" ] || return 1
		echo 1 >"$ca_sd/existed"
	elif [ -e "$1" ]; then
		ca_msg "$1 is not a regular file"
		return 1
	else
		echo absent >"$ca_sd/sha256.before"
		echo 0 >"$ca_sd/existed"
	fi
}

ca_record_after() {
	for ca_ad in "$CA_JDIR"/files/*; do
		[ -d "$ca_ad" ] || continue
		IFS= read -r ca_ap <"$ca_ad/path"
		ca_sha256 "$ca_ap" >"$ca_ad/sha256.after"
	done
}

# ----------------------------------------------------------- file writing

# ca_install SRC DEST MODE UID GID: replace DEST atomically (temp file in the
# same dir + mv), so a reader (augenrules, boot) sees old or new, never half.
# The temp name does not end in .rules, so augenrules never merges it.
ca_install() {
	ca_it=$(mktemp "$(dirname "$2")/.cisaudit.XXXXXX") || return 1
	if cat "$1" >"$ca_it" && chown "$4:$5" "$ca_it" && chmod "$3" "$ca_it"; then
		sync "$ca_it" 2>/dev/null || sync
		if mv -f "$ca_it" "$2"; then
			if command -v restorecon >/dev/null 2>&1; then restorecon -F "$2" 2>/dev/null; fi
			return 0
		fi
	fi
	rm -f "$ca_it"
	return 1
}

# Put the journaled bytes, mode and owner of one file back (or delete it if
# it did not exist before the run). Does nothing if it already matches.
ca_restore_file() {
	IFS= read -r ca_rp <"$1/path"
	IFS= read -r ca_rx <"$1/existed"
	if [ "$ca_rx" = 1 ]; then
		IFS= read -r ca_rs <"$1/stat"
		IFS= read -r ca_rb <"$1/sha256.before"
		# shellcheck disable=SC2086
		set -- "$1" $ca_rs # dir mode uid gid
		if [ "$(ca_sha256 "$ca_rp")" = "$ca_rb" ] &&
			[ "$(stat -c '%a %u %g' -- "$ca_rp")" = "$2 $3 $4" ]; then
			return 0
		fi
		ca_install "$1/content" "$ca_rp" "$2" "$3" "$4" || return 1
	else
		[ -e "$ca_rp" ] || [ -L "$ca_rp" ] || return 0
		rm -f -- "$ca_rp" || return 1
	fi
	ca_emit "cisaudit-restored: $ca_rp"
	ca_log "restored $ca_rp"
}

# ------------------------------------------------------------ kernel rules

# ca_rule_cmd RULE ADD|DEL: run auditctl with the rule's words. auditctl -R
# splits rule lines on whitespace with no quoting, so word splitting (with
# globbing off) gives auditctl the same argv. Deleting uses the same text
# with -W / -d: the kernel deletes only an exact match, so a hand-made rule
# that merely lists alike (a `never` watch, a dir= watch) is never hit.
ca_rule_cmd() {
	set -f
	# shellcheck disable=SC2086
	set -- "$2" $1
	set +f
	if [ "$1" = DEL ]; then
		case "$2" in
		-w) ca_rc_flag=-W ;;
		*) ca_rc_flag=-d ;;
		esac
		shift 2
		set -- "$ca_rc_flag" "$@"
	else
		shift
	fi
	CA_AUDITCTL_ERR=$(auditctl "$@" 2>&1 </dev/null)
}

# Delete one rule. 0 = deleted, 1 = was not live, 2 = error.
ca_delete_rule() {
	ca_rule_cmd "$1" DEL && return 0
	case "$CA_AUDITCTL_ERR" in *'No such file or directory'*) return 1 ;; esac
	return 2
}

# A rule whose add was in flight when the run was killed: we do not know if
# the add happened. Delete it, and if that removed a line the pre-run list
# already had, it was a pre-existing rule after all, so put it back.
ca_undo_pending() {
	ca_up=$(cat "$1/live.pending")
	ca_klist "$CA_TMP/up.before" || return 1
	ca_delete_rule "$ca_up"
	case $? in 1) return 0 ;; 2) return 1 ;; esac
	ca_klist "$CA_TMP/up.after" || return 1
	ca_upc=$(ca_added_lines "$CA_TMP/up.after" "$CA_TMP/up.before" | head -n 1)
	ca_upb=$(grep -cxF -e "$ca_upc" "$1/kernel.before.list")
	ca_upa=$(grep -cxF -e "$ca_upc" "$CA_TMP/up.after")
	if [ "$ca_upa" -lt "$ca_upb" ]; then
		ca_rule_cmd "$ca_up" ADD || return 1
		ca_log "in-flight rule was live before the run; kept: $ca_up"
	else
		ca_emit "cisaudit-removed: $ca_up"
	fi
}

# Undo the kernel part of a journaled run: delete, newest first, exactly the
# rules it added that are still live. Never -D: rules the tool did not add
# (hand-added, other tools) stay.
ca_undo_kernel() {
	ca_uk_rc=0
	if [ -f "$1/live.pending" ]; then
		ca_undo_pending "$1" || {
			ca_msg "could not settle in-flight rule $(cat "$1/live.pending"): $CA_AUDITCTL_ERR"
			ca_uk_rc=1
		}
	fi
	[ -f "$1/rules.live-added" ] || return "$ca_uk_rc"
	ca_reverse "$1/rules.live-added" >"$CA_TMP/undo.rules"
	while IFS= read -r ca_ur; do
		ca_delete_rule "$ca_ur"
		case $? in
		0) ca_emit "cisaudit-removed: $ca_ur" ;;
		1) ca_msg "was no longer live: $ca_ur" ;;
		*)
			ca_msg "could not remove $ca_ur: $CA_AUDITCTL_ERR"
			ca_uk_rc=1
			;;
		esac
	done <"$CA_TMP/undo.rules"
	return "$ca_uk_rc"
}

ca_undo_files() {
	ca_uf_rc=0
	for ca_ud in "$1"/files/*; do
		[ -f "$ca_ud/existed" ] || continue # snapshot never finished: untouched
		ca_restore_file "$ca_ud" || {
			ca_msg "could not restore $(cat "$ca_ud/path")"
			ca_uf_rc=1
		}
	done
	return "$ca_uf_rc"
}
