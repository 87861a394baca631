"""The SSM document in remediation/ is what host/ssm/document.py makes from the scripts the
suite sends, and its shell composes byte for byte the probe (and backout) command the suite
composes (host/shell.py) without the pieces' comment lines, with the nonces Python derives from
the run id. test_shell_compose.py proves that those lines are comments to the shell."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cisaudit.host.probe import PROBE_PIECES, probe_values
from cisaudit.host.remediation_io import render_backout
from cisaudit.host.shell import SCRIPTS, compose, piece, without_comment_lines
from cisaudit.host.ssm.document import PARAMETERS, document_script, nonces, parse_header, render_document
from cisaudit.model.catalogue import controls

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "remediation" / "cisaudit-docker.ssm.json"


def test_the_committed_document_is_the_generators() -> None:
    assert DOCUMENT.read_text() == render_document(), (
        "regenerate: python -m cisaudit.host.ssm.document > remediation/cisaudit-docker.ssm.json"
    )
    document = json.loads(DOCUMENT.read_text())
    assert document["schemaVersion"] == "2.2" and set(document["parameters"]) == set(PARAMETERS)
    assert len(DOCUMENT.read_bytes()) < 64 << 10  # an SSM document's content is at most 64 KB


def test_remediation_shows_the_scripts_themselves() -> None:
    assert (REPO / "remediation" / "scripts").resolve() == SCRIPTS.resolve()


def _composed(action: str, benchmark: str, run_id: str, tmp_path: Path) -> tuple[str, str]:
    """What the document's shell hands the wrapper, and its header line, for these parameters."""
    stub = tmp_path / "stub.sh"
    stub.write_text('printf \'%s\' "$CISAUDIT_FRAME_COMMAND" >"$CISAUDIT_OUT"\n')
    script = document_script()
    script = script.replace("{{ action }}", action).replace("{{ benchmark }}", benchmark)
    script = script.replace("{{ auditKey }}", "docker").replace("{{ runId }}", run_id)
    head = script[: script.index(without_comment_lines(piece("ssm-wrapper.sh")))] + stub.read_text()
    out = tmp_path / "command"
    proc = subprocess.run(
        ["sh", "-c", head], capture_output=True, text=True, env={"CISAUDIT_OUT": str(out)}, check=True
    )
    return out.read_text(), proc.stdout


@pytest.mark.parametrize("version", ["1.7.0", "1.8.0"])
def test_the_document_runs_the_probe_the_suite_sends(version: str, tmp_path: Path) -> None:
    command, header = _composed("audit", version, "run-42", tmp_path)
    marker, _ = nonces("run-42")
    assert command == compose({"M": marker, **probe_values(controls(version))}, *PROBE_PIECES, terse=True)
    parsed = parse_header(header)
    assert parsed is not None and (parsed.action, parsed.benchmark, parsed.run_id) == ("audit", version, "run-42")
    assert parsed.sent == "run-42"


def test_a_backout_without_run_id_undoes_the_latest_run(tmp_path: Path) -> None:
    """runId empty: backout.sh gets an empty CISAUDIT_RUN_ID (the latest run not yet undone), not
    a run id made on the instance, which names no run (backout.sh then cancelled that id)."""
    command, _ = _composed("backout", "1.7.0", "", tmp_path)
    expected = render_backout(None, dry_run=False).replace("CISAUDIT_RUN_ID=''\n", "CISAUDIT_RUN_ID=\n")
    assert command == without_comment_lines(expected)  # its values are one line each


def test_an_association_without_run_id_gives_every_instance_the_same_nonces(tmp_path: Path) -> None:
    """A State Manager association sends runId empty: each instance makes its own run id (its
    journal's), and the nonces come from the runId as sent, so one command's instances are read
    back together (read_results used to refuse them: "different run ids")."""
    command, header = _composed("audit", "1.7.0", "", tmp_path)
    parsed = parse_header(header)
    assert parsed is not None and parsed.sent == "" and parsed.run_id != ""
    assert command.startswith(f"M={nonces('')[0]}\n")


def test_the_document_runs_the_backout_the_suite_sends(tmp_path: Path) -> None:
    command, _ = _composed("backout", "1.7.0", "20261205T000000Z-abcdef", tmp_path)
    assert command == without_comment_lines(render_backout("20261205T000000Z-abcdef", dry_run=False))
