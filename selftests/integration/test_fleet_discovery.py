"""The fan-out starts before --ssm-targets' discovery (plugin/fleet_audit.py, README "10,000
instances, faster"), against the SSM emulator and moto's S3 server: a tag's command is sent before
DescribeInstanceInformation pages, and a --shard sends its own instances by id while the listing
pages. Whatever changes between the send and the listing, no host asked for is dropped and no
instance the listing did not name is audited: it is reported."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from cisaudit.model.shard import Shard
from selftests.s3_store import MotoS3
from selftests.ssm_emulator import Faults, SsmEmulator
from selftests.ssm_replay import Recording, Replayer, record_local
from selftests.suite_runner import run_suite

BUCKET = "cisaudit-discovery"
ARGS = ["--ssm-targets=tag:Role=docker-host", "--ssm-region=us-east-1", f"--ssm-s3-bucket={BUCKET}", "--controls=1.1.4"]


class Recorded(SsmEmulator):
    """The emulator, noting when each SendCommand and listing page came and whom each command
    targeted; `on_first_listing` runs before the first DescribeInstanceInformation is answered."""

    def __init__(self, *args: Any, on_first_listing: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sends: list[tuple[float, dict[str, Any]]] = []
        self.pages: list[float] = []
        self.filters: list[list[dict[str, Any]]] = []  # each DescribeInstanceInformation call's Filters
        self._first = on_first_listing
        self._once = threading.Lock()

    def _send_command(self, req: dict[str, Any]) -> dict[str, Any]:
        self.sends.append((time.monotonic(), {k: req.get(k) for k in ("InstanceIds", "Targets")}))
        return super()._send_command(req)

    def _describe_instance_information(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._once:
            if self._first and not self.pages and any(f["Key"].startswith("tag:") for f in req.get("Filters", [])):
                self._first(self)
        self.pages.append(time.monotonic())
        self.filters.append(list(req.get("Filters", [])))
        return super()._describe_instance_information(req)


@pytest.fixture(scope="module")
def recording() -> Recording:
    """This machine's probe, recorded while no other session changes the kernel's rules (another
    session's thousand-rule test made every replayed host an error)."""
    with FileLock("/run/lock/cisaudit-selftest.lock"):
        return record_local()


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    with MotoS3(BUCKET) as store:
        yield store


def _fleet(ids: list[str], recording: Recording, s3: MotoS3, latency: float = 0.05, **kwargs: Any) -> Recorded:
    return Recorded(
        dict.fromkeys(ids),
        tags={i: {"Role": "docker-host"} for i in ids},
        faults=Faults(latency=latency),
        s3_endpoint=s3.endpoint_url,
        runner=Replayer(dict.fromkeys(ids, recording), pace=False),
        **kwargs,
    )


def test_a_tag_command_goes_before_the_listing_and_what_changed_between_is_reported(
    recording: Recording, s3: MotoS3, tmp_path: Path
) -> None:
    """Between the tag's SendCommand and its listing one instance loses the tag (the command
    probed it; the listing does not name it: reported, not audited) and one gains it (listed, not
    reached: sent by id and audited), while the tag's command still waits on an offline instance."""
    ids = [f"i-{n:017x}" for n in range(1, 61)]  # two pages of the listing
    lost, gained, offline = ids[0], "i-000000000000000ff", "i-000000000000000fe"

    def drift(emu: SsmEmulator) -> None:
        emu.instances[lost].tags.clear()
        emu.instances[gained].tags["Role"] = "docker-host"

    with _fleet(ids, recording, s3, on_first_listing=drift) as emu:
        emu.instances[gained] = type(emu.instances[lost])(None)
        emu.instances[offline] = type(emu.instances[lost])(None, "ConnectionLost", {"Role": "docker-host"})
        emu.runner.recordings = dict.fromkeys([*ids, gained], recording)  # type: ignore[union-attr]
        run = run_suite(tmp_path, [], *ARGS, env=emu.environ | s3.environ)
    assert emu.sends[0][1]["Targets"] == [{"Key": "tag:Role", "Values": ["docker-host"]}], emu.sends
    assert emu.sends[0][0] < emu.pages[0], "the tag's command must go before its listing"
    assert [s["InstanceIds"] for _, s in emu.sends[1:]] == [[gained]], emu.sends
    assert run.verdict(f"ssm://{gained}", "1.1.4", "live") != "error", run.output[-3000:]
    assert all(run.verdict(f"ssm://{i}", "1.1.4", "live") != "error" for i in ids[1:])
    assert "offline (PingStatus=ConnectionLost)" in run.case(f"ssm://{offline}", "1.1.4", "live").summary
    assert not run.verdicts(f"ssm://{lost}"), "an instance the listing did not name is not audited"
    assert f"not in the tag's listing (tagged after SendCommand?), not audited: {lost}" in run.output, run.output[
        -3000:
    ]


def test_a_shard_sends_its_own_instances_by_id_while_the_listing_pages(
    recording: Recording, s3: MotoS3, tmp_path: Path
) -> None:
    ids = [f"i-{n:017x}" for n in range(1, 201)]  # four pages of the listing, 50 instances each
    mine = Shard(1, 2).instances(ids)
    with _fleet(ids, recording, s3, latency=0.2) as emu:
        run = run_suite(tmp_path, [], *ARGS, "--shard=1/2", env=emu.environ | s3.environ)
    sent = [i for _, s in emu.sends for i in s["InstanceIds"] or ()]
    assert all(not s["Targets"] for _, s in emu.sends) and sorted(sent) == sorted(mine), emu.sends
    assert emu.sends[0][0] < emu.pages[-1], "the shard's first command must go while the listing pages"
    assert {h for h, _, _ in run.cases} == {f"ssm://{i}" for i in mine}
    assert all(c.verdict != "error" for c in run.cases.values()), run.output[-3000:]


def _list_step(emu: SsmEmulator, s3: MotoS3, out: Path) -> subprocess.CompletedProcess[str]:
    """The job before the shards: `python -m cisaudit.plugin.ssm_list`, as a CI runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cisaudit.plugin.ssm_list", "--ssm-targets=tag:Role=docker-host"]
        + ["--ssm-region=us-east-1", f"--out={out}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **emu.environ, **s3.environ},
        check=False,
    )


def test_a_shard_given_the_list_files_ids_lists_no_tag_and_audits_exactly_its_share(
    recording: Recording, s3: MotoS3, tmp_path: Path
) -> None:
    """The list step pages the tag once (its offline member included); each shard then asks only
    about its own ids, 50 to a call, never by tag, sends them by id and audits exactly its share:
    an id of the file that went offline or was never managed is that host's error, not dropped."""
    ids = [f"i-{n:017x}" for n in range(1, 201)]
    shard = Shard(1, 2)
    offline = next(i for i in (f"i-{n:017x}" for n in range(300, 400)) if shard.instances([i]))
    unknown = next(i for i in (f"i-{n:017x}" for n in range(400, 500)) if shard.instances([i]))
    with _fleet(ids, recording, s3) as emu:
        emu.instances[offline] = type(emu.instances[ids[0]])(None, "ConnectionLost", {"Role": "docker-host"})
        listing = _list_step(emu, s3, tmp_path / "instances.txt")
        assert listing.returncode == 0, listing.stderr
        text = (tmp_path / "instances.txt").read_text().replace("count=201", "count=202") + f"{unknown}\n"
        (tmp_path / "instances.txt").write_text(text)
        pages_before = len(emu.pages)
        emu.filters.clear()
        run = run_suite(
            tmp_path / "out",
            [],
            *[a for a in ARGS if not a.startswith("--ssm-targets")],
            f"--ssm-instances-file={tmp_path / 'instances.txt'}",
            "--shard=1/2",
            env=emu.environ | s3.environ,
        )
    mine = shard.instances([*ids, offline, unknown])
    assert pages_before >= 5, "the list step pages the tag (201 instances, 50 a page)"
    assert all(not f or f[0]["Key"] == "InstanceIds" for f in emu.filters), emu.filters
    assert all(len(f[0]["Values"]) <= 50 for f in emu.filters)
    assert {i for f in emu.filters for i in f[0]["Values"]} == set(mine), "only its own ids"
    sent = [i for _, s in emu.sends for i in s["InstanceIds"] or ()]
    assert all(not s["Targets"] for _, s in emu.sends) and sorted(sent) == sorted(set(mine) - {offline, unknown})
    assert {h for h, _, _ in run.cases} == {f"ssm://{i}" for i in mine}, "exactly its share, none dropped"
    assert "offline (PingStatus=ConnectionLost)" in run.case(f"ssm://{offline}", "1.1.4", "live").summary
    assert "not a managed instance" in run.case(f"ssm://{unknown}", "1.1.4", "live").summary
    assert run.verdict(f"ssm://{unknown}", "1.1.4", "live") == "error" and run.returncode == 1
    assert all(
        c.verdict != "error" for (h, _, _), c in run.cases.items() if h not in (f"ssm://{offline}", f"ssm://{unknown}")
    )
