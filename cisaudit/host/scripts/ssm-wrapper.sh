# cisaudit SSM wrapper: run one command with its streams in temp files, always exit 0, and print
# one ASCII frame of them (cisaudit/host/ssm/frame.py documents the format). POSIX sh.
# cisaudit/host/ssm/frame.py composes: assignments, preamble.sh (PATH), this file. The assignments:
#   CISAUDIT_FRAME_MAGIC, CISAUDIT_FRAME_NONCE  the frame's header words
#   CISAUDIT_FRAME_COMMAND                      the command, run by /bin/sh -c
#   CISAUDIT_FRAME_CHUNK                        base64 characters printed inline (the rest stays
#                                               in the temp dir for fetch); empty: all of it
# shellcheck shell=sh
d=$(mktemp -d "${TMPDIR:-/tmp}/cisaudit-ssm.XXXXXXXX") || exit 0
# stdin is /dev/null: tools such as ausearch read stdin when it is not a terminal.
/bin/sh -c "$CISAUDIT_FRAME_COMMAND" </dev/null >"$d/o" 2>"$d/e"
rc=$?
# shellcheck disable=SC2046 # unquoted: drops the blanks some wc implementations print before the number
{ printf '%s %s %s\n' "$rc" $(wc -c <"$d/o") $(wc -c <"$d/e"); cat "$d/o" "$d/e"; } \
  | gzip -c | base64 | tr -d '\n' >"$d/b"
rm -f "$d/o" "$d/e"
n=$(($(wc -c <"$d/b")))
printf '%s %s %s %s %s\n' "$CISAUDIT_FRAME_MAGIC" "$CISAUDIT_FRAME_NONCE" "$n" "$d" "$(sha256sum <"$d/b" | cut -c1-64)"
if [ -z "$CISAUDIT_FRAME_CHUNK" ]; then
  cat "$d/b"
else
  dd if="$d/b" bs="$CISAUDIT_FRAME_CHUNK" count=1 2>/dev/null
fi
printf '\n%s %s END\n' "$CISAUDIT_FRAME_MAGIC" "$CISAUDIT_FRAME_NONCE"
if [ -z "$CISAUDIT_FRAME_CHUNK" ] || [ "$n" -le "$CISAUDIT_FRAME_CHUNK" ]; then rm -rf "$d"; fi
exit 0
