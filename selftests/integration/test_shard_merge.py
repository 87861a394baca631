"""`--shard K/N` and `python -m cisaudit.plugin.merge` (README "Past one runner"): the shards of an
emulated SSM fleet, joined, give the outputs one run gives on the same instances: results.json,
the compliance report, XCCDF (the fleet's file and each host's) and JUnit. Normalised: only the
run's times, command line (each run's own output paths) and SSM command ids, and JUnit's per-testcase time,
suite time, timestamp and hostname, and the FILE:LINE a skip's text starts with."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from cisaudit.plugin import merge
from selftests.s3_store import MotoS3
from selftests.ssm_emulator import Faults, SsmEmulator
from selftests.ssm_replay import Replayer, record_local
from selftests.suite_runner import REPO, run_suite

BUCKET = "cisaudit-shards"
IDS = [f"i-{n:017x}" for n in range(1, 10)]  # given order = natural order: a single run's record order
ARGS = ["--ssm-targets=tag:Role=docker-host", "--ssm-region=us-east-1", f"--ssm-s3-bucket={BUCKET}"]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # SSM command ids
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


@pytest.fixture(scope="module")
def emulator() -> Iterator[dict[str, str]]:
    recording = record_local()
    faults = Faults(fail=frozenset({IDS[4]}))  # one instance's probe fails: its host errors in every output
    tags = {i: {"Role": "docker-host"} for i in IDS}
    with (
        MotoS3(BUCKET) as s3,
        SsmEmulator(
            dict.fromkeys(IDS),
            tags=tags,
            faults=faults,
            s3_endpoint=s3.endpoint_url,
            runner=Replayer(dict.fromkeys(IDS, recording), pace=False),
        ) as emu,
    ):
        yield emu.environ | s3.environ


def _json(path: Path) -> dict[str, object]:
    doc = json.loads(UUID.sub("ID", path.read_text()))
    doc["run"] |= {"command": "", "started": "", "finished": ""}
    for host in doc["results"]:  # schema 2: [outcome index, started, finished] per record
        host["records"] = [[index, "", ""] for index, _, _ in host["records"]]
    return doc


def _text(path: Path) -> str:
    """XCCDF and HTML with every timestamp and the command line blanked."""
    text = ISO.sub("T", UUID.sub("ID", path.read_text()))
    text = re.sub(r"<dt>Date</dt><dd>[^<]*</dd>", "", text)  # the compliance report's run time
    return re.sub(r"pytest --(?:[^<\"\n]*)", "pytest ...", text)


def _located(text: str | None) -> str | None:
    """A skip's text without the FILE:LINE it starts with: pytest names where the skip was raised
    (an absolute path to tests/'s helper) for a case's own item, the test function for the others."""
    return re.sub(r"^\S*test_cis_docker_audit\.py:\d+: ", "", text) if text else text


def _junit(path: Path) -> list[object]:
    suite = ET.fromstring(UUID.sub("ID", path.read_text())).find("testsuite")
    assert suite is not None
    head = {k: v for k, v in suite.attrib.items() if k not in ("time", "timestamp", "hostname")}
    cases = [
        (
            {k: v for k, v in case.attrib.items() if k != "time"},
            [(c.tag, dict(c.attrib), _located(c.text), [dict(p.attrib) for p in c]) for c in case],
        )
        for case in suite.iter("testcase")
    ]
    return [head, cases]


@pytest.mark.parametrize(
    ("aggregate", "fleet_reports"),
    [("200", False), ("0", True), ("0", False)],
    ids=["per-case-items", "aggregated-fleet-reports", "aggregated"],
)
def test_merged_shards_equal_one_run(
    emulator: dict[str, str], tmp_path: Path, aggregate: str, fleet_reports: bool
) -> None:
    # Above --aggregate-above a run writes a JUnit testcase per host and test function and no
    # per-host XCCDF files; with --fleet-reports a testcase per case and the per-host files.
    args = [*ARGS, f"--aggregate-above={aggregate}", *(["--fleet-reports"] if fleet_reports else [])]
    single = run_suite(tmp_path / "single", [], *args, env=emulator)
    assert single.returncode == 1, single.output[-3000:]  # the failed instance errors
    shards = [tmp_path / f"shard{k}" for k in (1, 2, 3)]
    for k, directory in enumerate(shards, 1):
        run = run_suite(directory, [], *args, f"--shard={k}/3", env=emulator)
        assert run.returncode in (0, 1), run.output[-3000:]
        mine = json.loads((directory / "results.json").read_text())["hosts"]
        assert 0 < len(mine) < len(IDS)  # a share of the fleet, not all of it
    out = tmp_path / "merged"
    assert merge.main([*(str(d / "results.json") for d in reversed(shards)), f"--out={out}"]) == 1
    one = tmp_path / "single"
    assert _json(out / "results.json") == _json(one / "results.json")
    assert _text(out / "compliance.html") == _text(one / "compliance.html")
    assert _text(out / "results.xccdf.xml") == _text(one / "results.xccdf.xml")
    hosts = sorted(p.name for p in _listed(one / "results.xccdf.hosts"))
    assert sorted(p.name for p in _listed(out / "results.xccdf.hosts")) == hosts
    assert len(hosts) == (len(IDS) if aggregate == "200" or fleet_reports else 0)
    for name in hosts:
        assert _text(out / "results.xccdf.hosts" / name) == _text(one / "results.xccdf.hosts" / name), name
    assert _junit(out / "junit.xml") == _junit(one / "junit.xml")


def _listed(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.is_dir() else []


def test_merge_refuses_a_missing_or_doubled_shard_in_one_line(
    emulator: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [tmp_path / f"shard{k}" for k in (1, 2)]
    for k, directory in enumerate(runs, 1):
        run_suite(directory, [], *ARGS, "--controls=1.1.4", f"--shard={k}/3", env=emulator)
    files = [str(d / "results.json") for d in runs]
    assert merge.main([*files, f"--out={tmp_path / 'out'}"]) == 4
    assert capsys.readouterr().err == "cisaudit merge: shard 3/3 missing: give every shard's results.json\n"
    assert merge.main([files[0], files[0], files[1], f"--out={tmp_path / 'out'}"]) == 4
    assert "given twice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_shard_with_no_host_of_its_own_writes_empty_outputs_and_passes(tmp_path: Path) -> None:
    """local:// hashes to shard 7 of 8: shard 1 has nothing; its job passes and its results.json
    joins the others' (a CI matrix has a job per shard whatever the fleet's size)."""
    empty = run_suite(tmp_path / "shard1", ["local://"], "--controls=1.1.4", "--shard=1/8")
    assert empty.returncode == 0 and not empty.cases, empty.output[-3000:]
    doc = json.loads((tmp_path / "shard1" / "results.json").read_text())
    assert doc["results"] == [] and doc["hosts"] == []


def test_a_bad_shard_is_a_usage_error_before_any_host() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--shard=9/8", "-p", "no:cacheprovider", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stderr.strip() == "ERROR: --shard: '9/8': K must be between 1 and N; give e.g. 1/8"
