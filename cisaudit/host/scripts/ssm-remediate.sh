# cisaudit SSM remediate document (remediation/cisaudit-docker-remediate.ssm.json), the step after
# aws:downloadContent: check the downloaded bundle against bundleSha256 and find the python, print
# the header that --ssm-document-results reads, then ssm-wrapper.sh frames the bundle's run
# (host/ssm/onhost.py: probe -> plan -> apply.sh under the host lock -> re-probe). POSIX sh.
# cisaudit/host/ssm/document.py composes: the document's parameters, assignments, preamble.sh,
# ssm-runid.sh, this file, ssm-wrapper.sh. The assignments:
#   CISAUDIT_DOC_ACTION, CISAUDIT_DOC_BENCHMARK, CISAUDIT_DOC_KEY, CISAUDIT_DOC_RUN_ID,
#   CISAUDIT_DOC_CONTROLS, CISAUDIT_DOC_BUNDLE_URL, CISAUDIT_DOC_BUNDLE_SHA256, CISAUDIT_DOC_PYTHON
#       the document's parameters (SSM substitutes them; each is checked by its allowedPattern,
#       none can hold a quote or a blank)
#   CISAUDIT_DOC_BUNDLE_DIR  aws:downloadContent's destinationPath (the bundle is the URL's last name)
# shellcheck shell=sh
if [ "$CISAUDIT_DOC_ACTION" != remediate ]; then
  echo "cisaudit document: unknown action $CISAUDIT_DOC_ACTION (remediate; audit and backout: cisaudit-docker)" >&2
  exit 2
fi
# A private copy is checked and run (no one can swap the file between the check and the run).
downloaded="$CISAUDIT_DOC_BUNDLE_DIR/${CISAUDIT_DOC_BUNDLE_URL##*/}"
private=$(mktemp -d "${TMPDIR:-/tmp}/cisaudit-bundle.XXXXXXXX") || exit 2
bundle="$private/cisaudit.pyz"
if ! cp "$downloaded" "$bundle" 2>/dev/null ||
  ! printf '%s  %s\n' "$CISAUDIT_DOC_BUNDLE_SHA256" "$bundle" | sha256sum -c --status 2>/dev/null; then
  rm -rf "$private"
  echo "cisaudit document: $downloaded is missing or its sha256 is not bundleSha256: give the sha256 that python -m cisaudit.host.ssm.document --bundle printed for the file at bundleUrl" >&2
  exit 2
fi
if ! command -v "$CISAUDIT_DOC_PYTHON" >/dev/null 2>&1; then
  rm -rf "$private"
  echo "cisaudit document: no $CISAUDIT_DOC_PYTHON on this instance: install Python 3.11 or later and give its path as pythonPath" >&2
  exit 2
fi
# shellcheck disable=SC2034 # read by ssm-wrapper.sh
# -I: no PYTHONPATH, user site or current directory on the instance changes what runs.
CISAUDIT_FRAME_COMMAND="'$CISAUDIT_DOC_PYTHON' -I '$bundle' remediate --benchmark='$CISAUDIT_DOC_BENCHMARK' \
--key='$CISAUDIT_DOC_KEY' --run-id='$CISAUDIT_DOC_RUN_ID' --controls='$CISAUDIT_DOC_CONTROLS' \
--marker=@@cisaudit-$(printf '%s' "$CISAUDIT_DOC_HASH" | cut -c1-16)
rc=\$?
rm -rf '$private'
exit \$rc"
printf 'cisaudit-document: action=%s benchmark=%s key=%s run-id=%s sent-run-id=%s\n' \
  "$CISAUDIT_DOC_ACTION" "$CISAUDIT_DOC_BENCHMARK" "$CISAUDIT_DOC_KEY" "$CISAUDIT_DOC_RUN_ID" "$CISAUDIT_DOC_SENT_ID"
