"""The SSM remediate document (host/ssm/remediate_document.py) and the zipapp it runs
(host/ssm/bundle.py, host/ssm/onhost.py): generated, under 64 KB, reproducible, standard library
only, one line for what stops it, and read back only when the change went as planned."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from cisaudit.host.ssm import remediate_document
from cisaudit.host.ssm.bundle import build_bundle, main_text
from cisaudit.host.ssm.document import nonces
from cisaudit.host.ssm.onhost import PROBE_SEPARATOR

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "remediation" / remediate_document.DOCUMENT_FILE


def test_the_committed_remediate_document_is_the_generators() -> None:
    assert DOCUMENT.read_text() == remediate_document.render(), (
        "regenerate: python -m cisaudit.host.ssm.document --write remediation"
    )
    document = json.loads(DOCUMENT.read_text())
    assert [s["action"] for s in document["mainSteps"]] == ["aws:downloadContent", "aws:runShellScript"]
    assert {"bundleUrl", "bundleSha256", "pythonPath", "controls"} <= set(document["parameters"])
    assert len(DOCUMENT.read_bytes()) < 64 << 10  # an SSM document's content is at most 64 KB


def test_the_bundle_is_the_same_bytes_each_build() -> None:
    assert build_bundle() == build_bundle()


def _bundle(tmp_path: Path) -> Path:
    path = tmp_path / "cisaudit.pyz"
    path.write_bytes(build_bundle())
    return path


def test_the_bundle_needs_only_the_standard_library(tmp_path: Path) -> None:
    """-I -S: no site-packages (no boto3, testinfra, yaml); onhost imports its whole closure
    before it reads its arguments, and bad input is one line and exit 2, nothing changed."""
    args = ["remediate", "--benchmark=1.7.0", "--key=docker", "--run-id=r", "--marker=@@m", "--controls=9.9.9"]
    proc = subprocess.run([sys.executable, "-I", "-S", _bundle(tmp_path), *args], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr.startswith("cisaudit document: controls: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_an_older_python_is_told_in_one_line(tmp_path: Path) -> None:
    ast.parse(main_text((3, 11)), feature_version=(3, 4))  # the refusal itself parses on old pythons
    main = tmp_path / "main.py"
    main.write_text(main_text((99, 0)))
    proc = subprocess.run([sys.executable, main], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "needs Python 99.0 or later" in proc.stderr and "pythonPath" in proc.stderr


def _step(tmp_path: Path, sha: str) -> subprocess.CompletedProcess[str]:
    """The document's shell step, parameters put in, with a wrapper that prints its command."""
    script = remediate_document.document_script()
    script = script.replace(remediate_document.BUNDLE_DIR, str(tmp_path))
    values = {"action": "remediate", "benchmark": "1.7.0", "auditKey": "docker", "runId": "run-7"}
    values |= {"controls": "1.1.4", "bundleUrl": "https://s3.amazonaws.com/b/cisaudit.pyz", "bundleSha256": sha}
    for name, value in (values | {"pythonPath": sys.executable}).items():
        script = script.replace("{{ " + name + " }}", value)
    head = script[: script.index("# cisaudit SSM wrapper")] + 'printf "%s\\n" "$CISAUDIT_FRAME_COMMAND"\n'
    return subprocess.run(["sh", "-c", head], capture_output=True, text=True)


def test_the_step_runs_the_bundle_only_when_its_sha256_matches(tmp_path: Path) -> None:
    sha = hashlib.sha256(_bundle(tmp_path).read_bytes()).hexdigest()
    ran = _step(tmp_path, sha)
    marker, _ = nonces("run-7")
    assert ran.returncode == 0, ran.stderr
    header, command = ran.stdout.split("\n", 1)
    assert header == "cisaudit-document: action=remediate benchmark=1.7.0 key=docker run-id=run-7 sent-run-id=run-7"
    private = command.split("'")[3].removesuffix("/cisaudit.pyz")  # the checked copy, not the download
    assert private != str(tmp_path) and Path(private, "cisaudit.pyz").read_bytes() == _bundle(tmp_path).read_bytes()
    assert command == (
        f"'{sys.executable}' -I '{private}/cisaudit.pyz' remediate --benchmark='1.7.0' --key='docker' "
        f"--run-id='run-7' --controls='1.1.4' --marker={marker}\nrc=$?\nrm -rf '{private}'\nexit $rc\n"
    )
    proc = subprocess.run(["sh", "-c", command.replace("remediate --", "remediate --help #", 1)], capture_output=True)
    assert proc.returncode == 0 and not Path(private).exists()  # the copy goes once the bundle ran
    forged = _step(tmp_path, "0" * 64)
    assert forged.returncode == 2 and forged.stdout == "" and "sha256 is not bundleSha256" in forged.stderr


def test_only_a_change_that_went_as_planned_is_judged() -> None:
    plan = "cisaudit-plan: mode=augenrules target=/etc/audit/rules.d/00-cisaudit-docker.rules\n"
    good = plan + "cisaudit-result: status=applied run_id=r\n" + PROBE_SEPARATOR + "\nPROBE\n"
    assert remediate_document.probe_part(good) == ("PROBE\n", "")
    assert remediate_document.probe_part(plan + PROBE_SEPARATOR + "\nPROBE\n") == ("PROBE\n", "")  # nothing to add
    failed = (
        plan + "cisaudit-message: journal busy\ncisaudit-result: status=failed run_id=r\n" + PROBE_SEPARATOR + "\nP\n"
    )
    assert remediate_document.probe_part(failed) == ("", "remediation failed: journal busy")
    assert remediate_document.probe_part(plan)[1].startswith("the remediate run ended before its re-probe")


def test_the_bundle_holds_every_data_file_the_probe_sends(tmp_path: Path) -> None:
    """The probe sends both kernel-list readers as text (probe.kernel_rules_py/_pl): a bundle
    without one made the instance's remediate plan from a failed probe."""
    import zipfile

    from cisaudit.host import probe

    names = zipfile.ZipFile(_bundle(tmp_path)).namelist()
    for reader in (probe.KERNEL_RULES, probe.KERNEL_RULES.with_suffix(".pl")):
        assert f"cisaudit/host/{reader.name}" in names
