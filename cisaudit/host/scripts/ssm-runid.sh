# cisaudit SSM documents (host/ssm/document.py): the run id (the runId parameter, or made here)
# and the nonces that come from it (the probe adds its own secret half, probe-lib.sh):
#   sha256(run id) = 16 hex of the probe's public marker, then 32 hex of the frame's nonce.
# Sets CISAUDIT_DOC_RUN_ID, CISAUDIT_DOC_HASH (the 48 hex), CISAUDIT_FRAME_NONCE (read by ssm-wrapper.sh). POSIX sh.
# shellcheck shell=sh
if [ -z "$CISAUDIT_DOC_RUN_ID" ]; then
  CISAUDIT_DOC_RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
fi
CISAUDIT_DOC_HASH=$(printf '%s' "$CISAUDIT_DOC_RUN_ID" | sha256sum | cut -c1-48)
# shellcheck disable=SC2034 # read by ssm-wrapper.sh, composed after this file
CISAUDIT_FRAME_NONCE=$(printf '%s' "$CISAUDIT_DOC_HASH" | cut -c17-48)
