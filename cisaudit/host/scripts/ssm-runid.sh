# cisaudit SSM documents (host/ssm/document.py): the nonces, from the runId parameter AS SENT (the
# same on every instance of one command, also when empty, as a State Manager association sends
# it), then the run id (the parameter, or made here, each instance its own). The probe adds its
# own secret half to the public marker (probe-lib.sh):
#   sha256(runId as sent) = 16 hex of the probe's public marker, then 32 hex of the frame's nonce.
# Sets CISAUDIT_DOC_SENT_ID, CISAUDIT_DOC_HASH (the 48 hex), CISAUDIT_FRAME_NONCE (read by
# ssm-wrapper.sh), CISAUDIT_DOC_RUN_ID. POSIX sh.
# shellcheck shell=sh
CISAUDIT_DOC_SENT_ID=$CISAUDIT_DOC_RUN_ID
CISAUDIT_DOC_HASH=$(printf '%s' "$CISAUDIT_DOC_SENT_ID" | sha256sum | cut -c1-48)
# shellcheck disable=SC2034 # read by ssm-wrapper.sh, composed after this file
CISAUDIT_FRAME_NONCE=$(printf '%s' "$CISAUDIT_DOC_HASH" | cut -c17-48)
if [ -z "$CISAUDIT_DOC_RUN_ID" ]; then
  CISAUDIT_DOC_RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
fi
