# cisaudit SSM Command document (remediation/cisaudit-docker.ssm.json): choose the action's
# command and print the header that --ssm-document-results reads, then ssm-wrapper.sh frames it.
# POSIX sh. cisaudit/host/ssm/document.py composes: the document's parameters, assignments,
# preamble.sh, ssm-runid.sh, this file, ssm-wrapper.sh. The assignments:
#   CISAUDIT_DOC_ACTION, CISAUDIT_DOC_BENCHMARK, CISAUDIT_DOC_KEY, CISAUDIT_DOC_RUN_ID  the
#       document's parameters (SSM substitutes them; each is checked by its allowedPattern)
#   CISAUDIT_DOC_VALUES_COMMON            the probe's assignments every benchmark version shares
#   CISAUDIT_DOC_VALUES_<version with _>  the rest of them for that benchmark version
#   CISAUDIT_DOC_PROBE                     preamble.sh, then host/probe.py PROBE_PIECES
#   CISAUDIT_DOC_BACKOUT                   preamble.sh, common.sh, backout.sh
# The run id and nonces: ssm-runid.sh, composed before this file.
# shellcheck shell=sh
version_values() {
  case "$1" in '' | *[!0-9.]*) return ;; esac
  eval "printf '%s' \"\$CISAUDIT_DOC_VALUES_$(printf '%s' "$1" | tr . _)\""
}
case "$CISAUDIT_DOC_ACTION" in
audit)
  values=$(version_values "$CISAUDIT_DOC_BENCHMARK")
  if [ -z "$values" ]; then
    echo "cisaudit document: unknown benchmark version $CISAUDIT_DOC_BENCHMARK" >&2
    exit 2
  fi
  # shellcheck disable=SC2034 # read by ssm-wrapper.sh
  CISAUDIT_FRAME_COMMAND="M=@@cisaudit-$(printf '%s' "$CISAUDIT_DOC_HASH" | cut -c1-16)
$CISAUDIT_DOC_VALUES_COMMON$values
$CISAUDIT_DOC_PROBE"
  ;;
backout)
  # The runId as sent: empty backs out the latest run (a made id would name no run).
  # shellcheck disable=SC2034 # read by ssm-wrapper.sh
  CISAUDIT_FRAME_COMMAND="CISAUDIT_RUN_ID=$CISAUDIT_DOC_SENT_ID
CISAUDIT_DRY_RUN=0
CISAUDIT_FORCE=0
$CISAUDIT_DOC_BACKOUT"
  ;;
*)
  echo "cisaudit document: unknown action $CISAUDIT_DOC_ACTION (audit or backout)" >&2
  exit 2
  ;;
esac
printf 'cisaudit-document: action=%s benchmark=%s key=%s run-id=%s sent-run-id=%s\n' \
  "$CISAUDIT_DOC_ACTION" "$CISAUDIT_DOC_BENCHMARK" "$CISAUDIT_DOC_KEY" "$CISAUDIT_DOC_RUN_ID" "$CISAUDIT_DOC_SENT_ID"
