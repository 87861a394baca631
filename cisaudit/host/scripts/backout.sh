# cisaudit remediation: undo one apply.sh run from its journal. Runs as root,
# as one `sh -c` command made of shell assignments + common.sh + this file.
#
# Inputs (shell variables):
#   CISAUDIT_RUN_ID        run to undo; empty = the latest run not yet undone
#   CISAUDIT_JOURNAL_ROOT  default /var/lib/cisaudit/journal
#   CISAUDIT_DRY_RUN       1 = report what would be undone, change nothing
#   CISAUDIT_FORCE         1 = undo even if files changed after the run, or
#                          later runs are still in place (their work is lost)
#   CISAUDIT_LOCK_TIMEOUT  seconds to wait for the host lock (default 60)
# Output: cisaudit-restored:/cisaudit-removed:/cisaudit-mismatch:/
#   cisaudit-message: lines, then cisaudit-result: status=restored|mismatch|
#   nothing-to-do|reboot-required|refused|dry-run|failed ...
# Exit 0; 1 for failed/refused; 2 for mismatch.

if [ -z "${CISAUDIT_COMMON_LOADED:-}" ]; then
	# shellcheck source=cisaudit/host/scripts/common.sh
	. "$(dirname "$0")/common.sh"
fi
set -u

# Journal states a backout can act on. unchanged/rolled-back/backed-out runs
# left nothing behind, and a cancelled one never began (bo_cancel).
bo_undoable() {
	case "$(cat "$CA_JOURNAL_ROOT/$1/state" 2>/dev/null)" in
	started | files-written | loaded | done | rollback-failed | backing-out) return 0 ;;
	esac
	return 1
}

bo_nothing() {
	ca_msg "$1"
	ca_finish nothing-to-do 0 "removed=0 restored_files=0" "cisaudit: nothing to back out: $1"
}

# A named run with no journal may not have begun yet: its apply can still be on its way (the
# connection was lost while it was sent). Leave a journal saying so, under the lock: that
# apply then finds its run id used and changes nothing.
bo_cancel() {
	if [ "$CA_DRY_RUN" != 1 ]; then
		ca_journal_root
		CA_JDIR="$CA_JOURNAL_ROOT/$CA_RUN_ID"
		mkdir "$CA_JDIR" || ca_die "cannot create $CA_JDIR"
		ca_state cancelled
	fi
	bo_nothing "no journal for run $CA_RUN_ID; it can no longer start"
}

# Pick the run: the one named, or the newest undoable one in the index.
bo_select() {
	if [ -n "$CA_RUN_ID" ]; then
		ca_valid_id "$CA_RUN_ID" || ca_die "bad run id '$CA_RUN_ID'"
		[ -d "$CA_JOURNAL_ROOT/$CA_RUN_ID" ] || bo_cancel
		bo_undoable "$CA_RUN_ID" ||
			bo_nothing "run $CA_RUN_ID is $(cat "$CA_JOURNAL_ROOT/$CA_RUN_ID/state" 2>/dev/null)"
	else
		[ -f "$CA_JOURNAL_ROOT/index" ] || bo_nothing "no journal in $CA_JOURNAL_ROOT"
		ca_reverse "$CA_JOURNAL_ROOT/index" >"$CA_TMP/newest-first"
		while IFS= read -r bo_id; do
			if ca_valid_id "$bo_id" && bo_undoable "$bo_id"; then
				CA_RUN_ID=$bo_id
				break
			fi
		done <"$CA_TMP/newest-first"
		[ -n "$CA_RUN_ID" ] || bo_nothing "every journaled run is already backed out or changed nothing"
	fi
	CA_JDIR="$CA_JOURNAL_ROOT/$CA_RUN_ID"
}

# bo_read DIR: a journaled file's path and hash before the run.
bo_read() {
	bo_p='' bo_before=''
	IFS= read -r bo_p <"$1/path"
	IFS= read -r bo_before <"$1/sha256.before"
}

# Refuse to undo over later work: restoring old bytes would silently drop a
# later run's or a person's changes. CISAUDIT_FORCE=1 overrides.
bo_check() {
	bo_conflicts=0
	if [ -f "$CA_JOURNAL_ROOT/index" ]; then
		awk -v id="$CA_RUN_ID" 'later; $0 == id { later = 1 }' "$CA_JOURNAL_ROOT/index" >"$CA_TMP/later"
		while IFS= read -r bo_id; do
			if ca_valid_id "$bo_id" && bo_undoable "$bo_id"; then
				ca_msg "later run $bo_id is still in place; back it out first"
				bo_conflicts=$((bo_conflicts + 1))
			fi
		done <"$CA_TMP/later"
	fi
	for bo_d in "$CA_JDIR"/files/*; do
		[ -f "$bo_d/existed" ] || continue
		bo_read "$bo_d"
		bo_now=$(ca_sha256 "$bo_p")
		[ "$bo_now" = "$bo_before" ] && continue
		# No "after" hash: the run was cut short while writing; its own
		# half-done write is what we are here to undo.
		[ -f "$bo_d/sha256.after" ] || continue
		bo_after=''
		IFS= read -r bo_after <"$bo_d/sha256.after"
		[ "$bo_now" = "$bo_after" ] && continue
		ca_msg "$bo_p changed after run $CA_RUN_ID wrote it (sha256 $bo_now)"
		bo_conflicts=$((bo_conflicts + 1))
	done
	if [ "$bo_conflicts" -gt 0 ] && [ "${CISAUDIT_FORCE:-0}" != 1 ]; then
		ca_finish refused 1 "journal=$CA_JDIR" \
			"cisaudit: refused to back out $CA_RUN_ID: $bo_conflicts later change(s) would be lost (CISAUDIT_FORCE=1 overrides)"
	fi
}

bo_dry_run() {
	for bo_d in "$CA_JDIR"/files/*; do
		[ -f "$bo_d/existed" ] || continue
		bo_read "$bo_d"
		[ "$(ca_sha256 "$bo_p")" = "$bo_before" ] ||
			ca_emit "cisaudit-restored: $bo_p"
	done
	bo_n=0
	if [ -f "$CA_JDIR/rules.live-added" ]; then
		ca_reverse "$CA_JDIR/rules.live-added" >"$CA_TMP/undo.rules"
		while IFS= read -r bo_r; do
			ca_emit "cisaudit-removed: $bo_r"
			bo_n=$((bo_n + 1))
		done <"$CA_TMP/undo.rules"
	fi
	[ -f "$CA_JDIR/live.pending" ] && ca_msg "would settle in-flight rule: $(cat "$CA_JDIR/live.pending")"
	ca_msg "dry run: nothing changed"
	ca_finish dry-run 0 "removed=$bo_n journal=$CA_JDIR" \
		"cisaudit: dry run: would back out run $CA_RUN_ID ($(cat "$CA_JDIR/state"))"
}

# After the undo: files must hash as before the run, and `auditctl -l` must
# be the pre-run list. Differences are reported, not "fixed" (reloading a
# listing is not safe: a `never` watch lists like an `always` one).
bo_verify() {
	bo_mm=0
	for bo_d in "$CA_JDIR"/files/*; do
		[ -f "$bo_d/existed" ] || continue
		bo_read "$bo_d"
		bo_now=$(ca_sha256 "$bo_p")
		if [ "$bo_now" != "$bo_before" ]; then
			ca_emit "cisaudit-mismatch: file $bo_p sha256 $bo_now, before the run $bo_before"
			bo_mm=$((bo_mm + 1))
		fi
	done
	ca_klist "$CA_JDIR/kernel.after-backout.list" || ca_die "auditctl -l failed"
	# Killed before it listed the kernel: the run never got to touch it.
	[ -f "$CA_JDIR/kernel.before.list" ] || return 0
	cmp -s "$CA_JDIR/kernel.before.list" "$CA_JDIR/kernel.after-backout.list" && return 0
	if [ "$bo_immutable" = 1 ]; then
		# Rules the run persisted that a boot has loaded since: nothing can remove them until the
		# next boot, which loads the restored files.
		ca_msg "kernel is immutable: its rule list differs from before the run until the next reboot"
		bo_reboot=1
		return 0
	fi
	ca_added_lines "$CA_JDIR/kernel.before.list" "$CA_JDIR/kernel.after-backout.list" >"$CA_TMP/extra"
	ca_added_lines "$CA_JDIR/kernel.after-backout.list" "$CA_JDIR/kernel.before.list" >"$CA_TMP/missing"
	while IFS= read -r bo_r; do ca_emit "cisaudit-mismatch: kernel has extra rule: $bo_r"; done <"$CA_TMP/extra"
	while IFS= read -r bo_r; do ca_emit "cisaudit-mismatch: kernel lacks rule: $bo_r"; done <"$CA_TMP/missing"
	if [ ! -s "$CA_TMP/extra" ] && [ ! -s "$CA_TMP/missing" ]; then
		ca_emit "cisaudit-mismatch: kernel has the same rules in another order"
	fi
	bo_mm=$((bo_mm + 1))
}

bo_main() {
	ca_setup
	CA_SCRIPT=backout
	[ "$CA_DRY_RUN" = 1 ] || ca_lock
	[ -d "$CA_JOURNAL_ROOT" ] || [ -n "$CA_RUN_ID" ] || bo_nothing "no journal root $CA_JOURNAL_ROOT"
	bo_select
	bo_check
	[ "$CA_DRY_RUN" = 1 ] && bo_dry_run
	ca_state backing-out
	bo_immutable=0 bo_reboot=0
	if [ "$(ca_enabled)" = 2 ]; then
		bo_immutable=1
		ca_msg "kernel audit config is immutable (enabled 2): live rules stay until reboot; files restored"
	elif ! ca_undo_kernel "$CA_JDIR"; then
		ca_undo_files "$CA_JDIR"
		ca_finish failed 1 "journal=$CA_JDIR" "cisaudit: FAILED to remove some rules of $CA_RUN_ID; retry backout"
	fi
	ca_undo_files "$CA_JDIR" ||
		ca_finish failed 1 "journal=$CA_JDIR" "cisaudit: FAILED to restore some files of $CA_RUN_ID; retry backout"
	bo_verify
	ca_state backed-out
	bo_removed=$(printf '%s' "$CA_OUT" | grep -c '^cisaudit-removed: ')
	bo_restored=$(printf '%s' "$CA_OUT" | grep -c '^cisaudit-restored: ')
	bo_fields="removed=$bo_removed restored_files=$bo_restored journal=$CA_JDIR"
	if [ "$bo_immutable" = 1 ] && [ "$bo_mm" = 0 ] && { [ -s "$CA_JDIR/rules.live-added" ] || [ "$bo_reboot" = 1 ]; }; then
		ca_finish reboot-required 0 "$bo_fields" \
			"cisaudit: files of run $CA_RUN_ID restored; its live rules go away at the next reboot"
	elif [ "$bo_mm" -gt 0 ]; then
		ca_finish mismatch 2 "$bo_fields" \
			"cisaudit: backed out run $CA_RUN_ID, but the host differs from before the run (see cisaudit-mismatch)"
	fi
	ca_finish restored 0 "$bo_fields" \
		"cisaudit: backed out run $CA_RUN_ID: $bo_removed rule(s) removed, $bo_restored file(s) restored"
}

bo_main
