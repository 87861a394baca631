# cisaudit SSM fetch: print chunk CISAUDIT_FRAME_INDEX of a frame the wrapper (ssm-wrapper.sh)
# left in CISAUDIT_FRAME_DIR; with CISAUDIT_FRAME_LAST=1, remove the directory after. POSIX sh.
# cisaudit/host/ssm/frame.py composes: assignments, preamble.sh (PATH), this file.
# shellcheck shell=sh
printf '%s %s %s\n' "$CISAUDIT_FRAME_MAGIC" "$CISAUDIT_FRAME_NONCE" "$CISAUDIT_FRAME_INDEX"
dd if="$CISAUDIT_FRAME_DIR/b" bs="$CISAUDIT_FRAME_CHUNK" skip="$CISAUDIT_FRAME_INDEX" count=1 2>/dev/null
printf '\n%s %s END\n' "$CISAUDIT_FRAME_MAGIC" "$CISAUDIT_FRAME_NONCE"
if [ "$CISAUDIT_FRAME_LAST" = 1 ]; then rm -rf "$CISAUDIT_FRAME_DIR"; fi
exit 0
