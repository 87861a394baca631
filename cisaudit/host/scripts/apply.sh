# cisaudit remediation: add audit rules to this host, persistently and live,
# reversibly (see backout.sh). Runs as root, as one `sh -c` command made of
# shell assignments + common.sh + this file (cisaudit/host/remediation_io.py).
#
# Inputs (shell variables):
#   CISAUDIT_RUN_ID        run id, [A-Za-z0-9._-]; empty = generated
#   CISAUDIT_MODE          augenrules | auditctl
#   CISAUDIT_TARGET        augenrules: the managed /etc/audit/rules.d/NAME.rules
#                          auditctl:   the audit.rules file loaded at boot
#   CISAUDIT_RULES         rule lines to add (-w / -a), one a line, in the order the kernel
#                          should see them: written first (see ap_render) and loaded live at
#                          the head of the exit list (see ap_load)
#   CISAUDIT_TMPFILES      tmpfiles.d lines (`d PATH MODE UID GID -`) that make a rule's parent
#                          exist before auditd loads the rules at boot; written to $CA_TMPFILES_CONF
#   CISAUDIT_DRY_RUN       1 = report what would change, change nothing
#   CISAUDIT_AUDIT_RULES   the file augenrules writes and auditctl -R loads (model/loader.py AUDIT_RULES)
#   CISAUDIT_JOURNAL_ROOT  default /var/lib/cisaudit/journal
#   CISAUDIT_LOCK_TIMEOUT  seconds to wait for the host lock (default 60)
# Test hooks (never set in production): CISAUDIT_TEST_KILL_AT=<state>,
#   CISAUDIT_TEST_SLEEP_LOCKED=<s>, CISAUDIT_LOCK_METHOD=flock|mkdir,
#   CISAUDIT_LOCK_PATH.
# Output: cisaudit-added:/cisaudit-message: lines, then
#   cisaudit-result: status=applied|unchanged|reboot-required|dry-run|failed ...
# Exit 0 unless status=failed (1).

if [ -z "${CISAUDIT_COMMON_LOADED:-}" ]; then
	# shellcheck source=cisaudit/host/scripts/common.sh
	. "$(dirname "$0")/common.sh"
fi
set -u

ap_inputs() {
	if [ -z "$CA_RUN_ID" ]; then
		CA_RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)-$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
	fi
	ca_valid_id "$CA_RUN_ID" ||
		ca_die "bad run id '$CA_RUN_ID' (want [A-Za-z0-9._-], no leading dot, at most 100 chars)"
	AP_MODE="${CISAUDIT_MODE:-}"
	AP_TARGET="${CISAUDIT_TARGET:-}"
	AP_BENCHMARK="${CISAUDIT_BENCHMARK:-}" # the benchmark the rules implement, named in each file written
	[ -n "$AP_BENCHMARK" ] || ca_die "no benchmark named (CISAUDIT_BENCHMARK): the files written must name it"
	AP_AUDIT_RULES="$CISAUDIT_AUDIT_RULES" # augenrules' fixed output file (model/loader.py AUDIT_RULES)
	case "$AP_TARGET" in
	/*) ;;
	*) ca_die "target '$AP_TARGET' is not an absolute path" ;;
	esac
	case "$AP_TARGET" in *[[:space:]]*) ca_die "target '$AP_TARGET' contains whitespace" ;; esac
	case "$AP_MODE" in
	augenrules)
		# augenrules merges only /etc/audit/rules.d/*.rules: any other name
		# would be written and never loaded at boot.
		case "$AP_TARGET" in
		/etc/audit/rules.d/*.rules) ;;
		*) ca_die "augenrules mode needs a target /etc/audit/rules.d/NAME.rules, not '$AP_TARGET'" ;;
		esac
		command -v augenrules >/dev/null 2>&1 || ca_die "augenrules not found"
		;;
	auditctl) ;;
	*) ca_die "mode must be augenrules or auditctl, not '$AP_MODE'" ;;
	esac
	[ -d "$(dirname "$AP_TARGET")" ] || ca_die "directory of $AP_TARGET does not exist"
	command -v auditctl >/dev/null 2>&1 || ca_die "auditctl not found (is auditd installed?)"
	# Drop repeats, keep order.
	printf '%s\n' "${CISAUDIT_RULES:-}" | ca_normalize | awk '!seen[$0]++' >"$CA_TMP/requested"
	while IFS= read -r ap_r; do
		ca_check_rule "$ap_r" || ca_die "not an audit rule line this tool adds: $ap_r"
	done <"$CA_TMP/requested"
	printf '%s\n' "${CISAUDIT_TMPFILES:-}" | ca_normalize | awk '!seen[$0]++' >"$CA_TMP/tmpfiles"
	while IFS= read -r ap_r; do
		case "$ap_r" in
		'd /'*' '[0-7][0-7][0-7][0-7]' '[0-9]*' '[0-9]*' -') ;;
		*) ca_die "not a tmpfiles.d line this tool writes: $ap_r" ;;
		esac
	done <"$CA_TMP/tmpfiles"
}

# Files the run may change. augenrules rewrites audit.rules and copies the
# old one to audit.rules.prev.
ap_files() {
	printf '%s\n' "$AP_TARGET"
	[ -s "$CA_TMP/tmpfiles" ] && printf '%s\n' "$CA_TMPFILES_CONF"
	if [ "$AP_MODE" = augenrules ]; then
		printf '%s\n%s\n' "$AP_AUDIT_RULES" "$AP_AUDIT_RULES.prev"
	fi
}

# Split the request into rules already persisted (skipped) and rules to
# write to $CA_TMP/persist. In augenrules mode a rule in ANY rules.d file
# counts: a second copy would make the boot-time `auditctl -R` fail with
# "Rule exists" and drop every rule after it.
ap_plan() {
	: >"$CA_TMP/persist"
	: >"$CA_TMP/held.target"
	[ -f "$AP_TARGET" ] && ca_normalize <"$AP_TARGET" >"$CA_TMP/held.target"
	: >"$CA_TMP/held.other"
	if [ "$AP_MODE" = augenrules ]; then
		for ap_f in "$(dirname "$AP_TARGET")"/*.rules; do
			[ -f "$ap_f" ] && [ "$ap_f" != "$AP_TARGET" ] && ca_normalize <"$ap_f" >>"$CA_TMP/held.other"
		done
	fi
	# One awk, not a grep or two per rule (see common.sh on processes).
	awk 'FILENAME == ARGV[1] { t[$0] = 1; next } FILENAME == ARGV[2] { o[$0] = 1; next }
		{ print (($0 in t) ? "target" : ($0 in o) ? "other" : "persist") " " $0 }' \
		"$CA_TMP/held.target" "$CA_TMP/held.other" "$CA_TMP/requested" >"$CA_TMP/placed"
	while IFS= read -r ap_r; do
		case "$ap_r" in
		'target '*) ca_msg "already in $AP_TARGET: ${ap_r#target }" ;;
		'other '*) ca_msg "already persisted in another $(dirname "$AP_TARGET") file: ${ap_r#other }" ;;
		*) printf '%s\n' "${ap_r#persist }" >>"$CA_TMP/persist" ;;
		esac
	done <"$CA_TMP/placed"
}

# Write to $2 the content of $1 with the managed block holding its old rule
# lines plus those in $CA_TMP/persist. Bytes outside the block are copied
# with head/tail, which keep them exactly (CRLF, no final newline, ...).
ap_render() {
	ap_t=$1 ap_to=$2
	ap_b=0 ap_e=0 ap_x=0
	if [ -f "$ap_t" ]; then
		# Count and line of the markers; where a new block goes (cisaudit/model/plan.py _block_at):
		# before the first rule line, so the kernel sees its rules before every other rule (first
		# match wins) and after -D/-b/-f (a -D after it would delete it); with no rule line,
		# before the first -e (after -e 2 the kernel refuses rule changes).
		# shellcheck disable=SC2046
		set -- $(CA_B="$CA_BEGIN" CA_E="$CA_END" awk '
			$0 == ENVIRON["CA_B"] { nb++; b = NR }
			$0 == ENVIRON["CA_E"] { ne++; e = NR }
			!r && /^[[:space:]]*-[waA]([[:space:]]|$)/ { r = NR }
			!x && /^[[:space:]]*-e([[:space:]]|$)/ { x = NR }
			END { print nb + 0, ne + 0, b + 0, e + 0, (r ? r : x + 0) }' "$ap_t")
		[ $# -eq 5 ] || { ca_msg "cannot read $ap_t"; return 1; }
		if [ "$1" -gt 1 ] || [ "$1" != "$2" ]; then
			ca_msg "$ap_t has $1 begin and $2 end markers of the managed block; fix by hand"
			return 1
		fi
		ap_b=$3 ap_e=$4 ap_x=$5
		[ "$ap_e" -ge "$ap_b" ] || { ca_msg "managed block end before begin in $ap_t"; return 1; }
	fi
	{
		if [ "$ap_b" -gt 0 ]; then
			head -n "$((ap_b - 1))" "$ap_t"
			ap_block "$ap_t" "$ap_b" "$ap_e"
			tail -n "+$((ap_e + 1))" "$ap_t"
		elif [ "$ap_x" -gt 0 ]; then
			head -n "$((ap_x - 1))" "$ap_t"
			ap_block
			tail -n "+$ap_x" "$ap_t"
		else
			if [ -s "$ap_t" ]; then
				cat "$ap_t"
				[ -n "$(tail -c 1 "$ap_t")" ] && printf '\n'
			fi
			ap_block
		fi
	} >"$ap_to"
}

# The block: markers, a header naming the run, old block lines, new rules.
ap_block() {
	printf '%s\n' "$CA_BEGIN"
	printf '%s (%s section 1.1): last changed by run %s at %s\n' \
		"$CA_HEADER_PREFIX" "$AP_BENCHMARK" "$CA_RUN_ID" "$(ca_now)"
	if [ $# -eq 3 ]; then
		sed -n "$(($2 + 1)),$(($3 - 1))p" "$1" | grep -vF -e "$CA_HEADER_PREFIX"
	fi
	cat "$CA_TMP/persist"
	printf '%s\n' "$CA_END"
}

ap_dry_run() {
	ap_plan
	while IFS= read -r ap_r; do ca_emit "cisaudit-added: $ap_r"; done <"$CA_TMP/persist"
	while IFS= read -r ap_r; do ca_emit "cisaudit-added: tmpfiles.d: $ap_r"; done <"$CA_TMP/tmpfiles"
	ap_n=$(wc -l <"$CA_TMP/persist")
	if [ "$ap_n" -gt 0 ]; then
		ap_render "$AP_TARGET" "$CA_TMP/new" || ca_die "cannot render $AP_TARGET"
		ca_log "dry run: $AP_TARGET would become (diff):"
		ap_old=/dev/null
		[ -f "$AP_TARGET" ] && ap_old=$AP_TARGET
		diff -u "$ap_old" "$CA_TMP/new" >&2
		[ "$AP_MODE" = augenrules ] && ca_msg "would regenerate $AP_AUDIT_RULES with augenrules (no --load)"
	fi
	[ "$(ca_enabled)" = 2 ] && ca_msg "kernel audit config is immutable (enabled 2): rules would load only after a reboot"
	ca_msg "dry run: kernel rules not touched; rules already live are found only on a real run"
	ca_finish dry-run 0 "mode=$AP_MODE target=$AP_TARGET added=$ap_n" \
		"cisaudit: dry run: would add $ap_n rule(s) to $AP_TARGET and load the ones not yet live at the head of the kernel's list"
}

# The journal comes before any change: everything backout.sh needs.
ap_journal() {
	ca_journal_root
	CA_JDIR="$CA_JOURNAL_ROOT/$CA_RUN_ID"
	mkdir "$CA_JDIR" 2>/dev/null || {
		ap_used=$(cat "$CA_JDIR/state" 2>/dev/null)
		CA_JDIR=''
		[ "$ap_used" = cancelled ] &&
			ca_die "run $CA_RUN_ID was backed out before it began (journal state cancelled); nothing changed"
		ca_die "run id $CA_RUN_ID already used (journal $CA_JOURNAL_ROOT/$CA_RUN_ID exists)"
	}
	mkdir "$CA_JDIR/files"
	# The index orders runs exactly (run ids of one second sort at random);
	# written under the lock, so appends never interleave.
	printf '%s\n' "$CA_RUN_ID" >>"$CA_JOURNAL_ROOT/index"
	ca_state started
	{
		printf 'run_id=%s\nmode=%s\ntarget=%s\nstarted=%s\nhost=%s\n' \
			"$CA_RUN_ID" "$AP_MODE" "$AP_TARGET" "$(ca_now)" "$(uname -n)"
	} >"$CA_JDIR/meta"
	cp "$CA_TMP/requested" "$CA_JDIR/rules.requested"
	# From here on a failure goes through ap_rollback, which marks the
	# journal so backout does not pick a run that changed nothing.
	ca_klist "$CA_JDIR/kernel.before.list" || ap_rollback "auditctl -l failed"
	auditctl -s >"$CA_JDIR/kernel.before.status" 2>&1
	ap_files >"$CA_TMP/files"
	while IFS= read -r ap_f; do
		ca_snapshot_file "$ap_f" || ap_rollback "cannot journal $ap_f"
	done <"$CA_TMP/files"
	: >"$CA_JDIR/snapshot.ok"
}

# Failure after the journal: undo what this run did, say what happened.
ap_rollback() {
	ca_msg "$1; rolling back"
	if ca_undo_kernel "$CA_JDIR" && ca_undo_files "$CA_JDIR"; then
		ca_state rolled-back
		ca_finish failed 1 "mode=$AP_MODE target=$AP_TARGET added=0 rolled_back=1" \
			"cisaudit: FAILED and rolled back: $1"
	fi
	ca_state rollback-failed
	ca_finish failed 1 "mode=$AP_MODE target=$AP_TARGET rolled_back=0" \
		"cisaudit: FAILED, rollback incomplete (journal $CA_JDIR; run backout.sh): $1"
}

ap_write() {
	cp "$CA_TMP/persist" "$CA_JDIR/rules.persisted"
	if [ -s "$CA_TMP/persist" ]; then
		ap_render "$AP_TARGET" "$CA_TMP/new" || ap_rollback "cannot render $AP_TARGET"
		ca_install "$CA_TMP/new" "$AP_TARGET" 0600 0 0 || ap_rollback "cannot write $AP_TARGET"
		ca_log "wrote $AP_TARGET"
		[ "$AP_MODE" = augenrules ] && ap_augenrules
	fi
	ap_write_tmpfiles
	ca_record_after
	ca_state files-written
}

# The tmpfiles.d entries, merged with those of earlier runs; systemd-tmpfiles-setup reads them at
# boot before auditd loads the rules (docs/kernel-behaviour.md, "Boot").
ap_write_tmpfiles() {
	AP_TMPFILES_ADDED=0
	[ -s "$CA_TMP/tmpfiles" ] || return 0
	mkdir -p "$(dirname "$CA_TMPFILES_CONF")" || ap_rollback "cannot create $(dirname "$CA_TMPFILES_CONF")"
	{
		printf '%s\n' "$CA_HEADER_PREFIX ($AP_BENCHMARK section 1.1): paths audit rules need at boot; undo with cisaudit backout"
		{ [ -f "$CA_TMPFILES_CONF" ] && grep -v '^#' "$CA_TMPFILES_CONF"; cat "$CA_TMP/tmpfiles"; } | awk 'NF && !seen[$0]++'
	} >"$CA_TMP/tmpfiles.new"
	if [ "$(ca_sha256 "$CA_TMPFILES_CONF")" = "$(ca_sha256 "$CA_TMP/tmpfiles.new")" ]; then
		ca_msg "already in $CA_TMPFILES_CONF: $(tr '\n' ';' <"$CA_TMP/tmpfiles")"
		return 0
	fi
	ca_install "$CA_TMP/tmpfiles.new" "$CA_TMPFILES_CONF" 0644 0 0 || ap_rollback "cannot write $CA_TMPFILES_CONF"
	while IFS= read -r ap_r; do ca_emit "cisaudit-added: tmpfiles.d: $ap_r"; done <"$CA_TMP/tmpfiles"
	AP_TMPFILES_ADDED=$(wc -l <"$CA_TMP/tmpfiles")
	ca_log "wrote $CA_TMPFILES_CONF"
}

# Regenerate audit.rules WITHOUT --load: --load runs `auditctl -R` on the
# whole file, whose first line is -D (drops live rules nobody persisted), and
# which stops at the first bad line (a partial rule set), and re-applies -b/-f.
ap_augenrules() {
	cp "$AP_AUDIT_RULES" "$CA_TMP/audit.rules.old" 2>/dev/null || : >"$CA_TMP/audit.rules.old"
	augenrules >"$CA_TMP/augenrules.out" 2>&1 ||
		ap_rollback "augenrules failed: $(tr '\n' ' ' <"$CA_TMP/augenrules.out")"
	ca_normalize <"$AP_AUDIT_RULES" >"$CA_TMP/audit.rules.now"
	ap_r=$(awk 'FILENAME == ARGV[1] { now[$0] = 1; next } !($0 in now) { print; exit }' \
		"$CA_TMP/audit.rules.now" "$CA_TMP/persist")
	[ -z "$ap_r" ] || ap_rollback "augenrules output $AP_AUDIT_RULES lacks $ap_r"
	# augenrules also merges rules.d edits nobody regenerated, and drops
	# hand edits of audit.rules: say so, they are not this run's doing.
	ca_normalize <"$CA_TMP/audit.rules.old" | cat - "$CA_TMP/persist" >"$CA_TMP/expected"
	ca_added_lines "$CA_TMP/expected" "$CA_TMP/audit.rules.now" | grep -v '^#' |
		head -n 5 >"$CA_TMP/foreign"
	while IFS= read -r ap_r; do
		ca_msg "augenrules also merged a line not from this run: $ap_r"
	done <"$CA_TMP/foreign"
	ca_added_lines "$CA_TMP/audit.rules.now" "$CA_TMP/expected" | grep -v '^#' |
		head -n 5 >"$CA_TMP/foreign"
	while IFS= read -r ap_r; do
		ca_msg "augenrules dropped a line of the old $AP_AUDIT_RULES: $ap_r"
	done <"$CA_TMP/foreign"
}

# The rule as `auditctl -A` adds it at the head of the exit list: for the kernel the same rule
# (measured: after `-A exit,always -F dir=D -F perm=rwxa -k K`, `-w D -k K` is "Rule exists", and
# `-d` with either text deletes it). A watch becomes `-F dir=` on a directory and `-F path=`
# otherwise, as auditctl -w decides; its perms default to rwxa, as auditctl's do.
# Sets AP_PREPEND.
ap_prepend_form() {
	AP_PREPEND=''
	set -f
	# shellcheck disable=SC2086
	set -- $1
	set +f
	case "$1" in
	-a | -A)
		shift
		AP_PREPEND="-A $*"
		;;
	-w)
		ap_pf_field=path
		[ -d "$2" ] && ap_pf_field=dir
		ap_pf_path=$2 ap_pf_perm=rwxa
		shift 2
		if [ "${1:-}" = -p ]; then
			ap_pf_perm=$2
			shift 2
		fi
		AP_PREPEND="-A exit,always -F $ap_pf_field=$ap_pf_path -F perm=$ap_pf_perm $*"
		;;
	esac
}

# Add the rules live, one auditctl call each, so each gets its own verdict, at the HEAD of the
# exit list, where the persisted file puts them at boot (cisaudit/model/plan.py): the kernel gives
# an access to the first matching rule. `auditctl -A` never answers "Rule exists" (the kernel
# compares its prepend flag; measured), so each rule is first added as written: "Rule exists" means
# it is live already and stays where it is; otherwise that appended copy is deleted again and the
# rule prepended (ap_prepend_form). Prepended last-first, the rules keep the plan's order. The
# journal keeps each rule as written: for a delete (-W/-d) both forms are one rule (measured), and
# the prepended copy, first in the list, is the one deleted. live.pending names the rule in
# flight: if the run dies mid-way, backout can settle whether it was added (see ca_undo_pending).
ap_load() {
	: >"$CA_JDIR/rules.live-added"
	: >"$CA_JDIR/rules.live-canonical"
	AP_ENABLED=$(ca_enabled)
	if [ "$AP_ENABLED" = 2 ]; then
		ca_msg "kernel audit config is immutable (enabled 2): rules not loaded; they load at the next boot"
		ca_state loaded
		return 0
	fi
	[ "$AP_ENABLED" = 0 ] && ca_msg "auditing is disabled (enabled 0): rules loaded but not enforced until enabled"
	# Sorted listings k.0/k.1: after one rule, before the next (ca_added_lines sorts both).
	sort "$CA_JDIR/kernel.before.list" >"$CA_TMP/k.0"
	ap_cur=0 ap_next=1
	ca_reverse "$CA_TMP/requested" >"$CA_TMP/load-order"
	while IFS= read -r ap_r; do
		printf '%s\n' "$ap_r" >"$CA_JDIR/live.pending"
		if ! ca_rule_cmd "$ap_r" ADD; then
			rm -f "$CA_JDIR/live.pending"
			case "$CA_AUDITCTL_ERR" in
			*'Rule exists'*) ca_log "already live (left where it is): $ap_r" ;;
			*) ap_rollback "auditctl refused '$ap_r': $CA_AUDITCTL_ERR" ;;
			esac
			continue
		fi
		ap_prepend_form "$ap_r"
		ap_first=$AP_PREPEND
		ca_rule_cmd "$ap_r" DEL || ap_rollback "cannot move '$ap_r' to the head of the list: $CA_AUDITCTL_ERR"
		ca_rule_cmd "$ap_first" ADD || ap_rollback "auditctl refused '$ap_first': $CA_AUDITCTL_ERR"
		printf '%s\n' "$ap_r" >>"$CA_JDIR/rules.live-added"
		rm -f "$CA_JDIR/live.pending"
		ca_klist "$CA_TMP/k.list" || ap_rollback "auditctl -l failed"
		sort "$CA_TMP/k.list" >"$CA_TMP/k.$ap_next"
		comm -13 "$CA_TMP/k.$ap_cur" "$CA_TMP/k.$ap_next" >"$CA_TMP/k.new"
		[ -s "$CA_TMP/k.new" ] || ap_rollback "auditctl accepted but does not list: $ap_first"
		IFS= read -r ap_c <"$CA_TMP/k.new"
		printf '%s\n' "$ap_c" >>"$CA_JDIR/rules.live-canonical"
		ap_cur=$ap_next ap_next=$((1 - ap_next))
		ca_log "loaded first: $ap_first"
	done <"$CA_TMP/load-order"
	ca_state loaded
}

# The kernel list must now hold every canonical line we saw appear (counting
# repeats) and nothing may have vanished. Foreign changes are only reported.
ap_verify() {
	ca_klist "$CA_JDIR/kernel.after.list" || ap_rollback "auditctl -l failed"
	# ca_added_lines, each file sorted once (`comm -23 A B` is `comm -13 B A`)
	sort "$CA_JDIR/kernel.before.list" >"$CA_TMP/v.before"
	sort "$CA_JDIR/kernel.after.list" >"$CA_TMP/v.after"
	sort "$CA_JDIR/rules.live-canonical" >"$CA_TMP/v.canonical"
	comm -13 "$CA_TMP/v.before" "$CA_TMP/v.after" >"$CA_TMP/gained"
	comm -23 "$CA_TMP/v.before" "$CA_TMP/v.after" >"$CA_TMP/lost"
	comm -13 "$CA_TMP/gained" "$CA_TMP/v.canonical" >"$CA_TMP/missing"
	if [ -s "$CA_TMP/missing" ]; then
		ap_rollback "added rules missing from auditctl -l: $(tr '\n' ';' <"$CA_TMP/missing")"
	fi
	comm -23 "$CA_TMP/gained" "$CA_TMP/v.canonical" >"$CA_TMP/foreign"
	while IFS= read -r ap_r; do
		ca_msg "kernel gained a rule not from this run (another tool?): $ap_r"
	done <"$CA_TMP/foreign"
	while IFS= read -r ap_r; do
		ca_msg "kernel lost a rule during this run (another tool?): $ap_r"
	done <"$CA_TMP/lost"
}

ap_report() {
	ca_reverse "$CA_JDIR/rules.live-added" | cat "$CA_TMP/persist" - | awk '!seen[$0]++' >"$CA_TMP/added"
	while IFS= read -r ap_r; do ca_emit "cisaudit-added: $ap_r"; done <"$CA_TMP/added"
	ap_p=$(wc -l <"$CA_TMP/persist")
	ap_l=$(wc -l <"$CA_JDIR/rules.live-added")
	ap_n=$(wc -l <"$CA_TMP/added")
	ap_fields="mode=$AP_MODE target=$AP_TARGET added=$ap_n persisted=$ap_p loaded=$ap_l tmpfiles=${AP_TMPFILES_ADDED:-0} journal=$CA_JDIR"
	if [ "$AP_ENABLED" = 2 ] && [ "$ap_p" -gt 0 ]; then
		ca_state 'done'
		ca_finish reboot-required 0 "$ap_fields" \
			"cisaudit: wrote $ap_p rule(s) to $AP_TARGET; kernel is immutable, they take effect after a reboot"
	elif [ "$ap_n" -eq 0 ] && [ "${AP_TMPFILES_ADDED:-0}" -eq 0 ]; then
		[ "$AP_ENABLED" = 2 ] && ca_msg "kernel is immutable: live rules could not be checked"
		ca_state unchanged
		ca_finish unchanged 0 "$ap_fields" "cisaudit: nothing to do: all rules already in place"
	fi
	ca_state 'done'
	ca_finish applied 0 "$ap_fields" \
		"cisaudit: applied run $CA_RUN_ID: $ap_p rule(s) written to $AP_TARGET, $ap_l loaded live (undo: backout.sh)"
}

ap_main() {
	ca_setup
	CA_SCRIPT=apply
	ap_inputs
	if [ ! -s "$CA_TMP/requested" ] && [ ! -s "$CA_TMP/tmpfiles" ]; then
		ca_finish unchanged 0 "added=0" "cisaudit: no rules requested"
	fi
	[ "$CA_DRY_RUN" = 1 ] && ap_dry_run
	ca_lock
	ap_journal
	ap_plan
	ap_write
	ap_load
	ap_verify
	ap_report
}

ap_main
