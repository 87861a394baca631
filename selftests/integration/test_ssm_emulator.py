"""SsmBackend and discover_targets with real boto3 over HTTP against the local SSM emulator.

The emulator maps instance ids to local:// and really runs each command here, so results
are exact; boto3 finds it through AWS_ENDPOINT_URL_SSM.
"""

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cisaudit.host.ssm import backend as ssm
from cisaudit.host.transport import ConnectOptions, open_host
from selftests.ssm_emulator import Faults, SsmEmulator

IID = "i-0123456789abcdef0"
Start = Callable[..., SsmEmulator]


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """start(**emulator kwargs) -> a running emulator that boto3 in this process talks to."""
    running: list[SsmEmulator] = []
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    def _start(mapping: dict[str, str] | None = None, **kwargs) -> SsmEmulator:
        emu = SsmEmulator(mapping or {IID: "local://"}, **kwargs).__enter__()
        running.append(emu)
        for name, value in emu.environ.items():
            monkeypatch.setenv(name, value)
        return emu

    yield _start
    for emu in running:
        emu.__exit__(None, None, None)


def backend(**kwargs) -> ssm.SsmBackend:
    kwargs = {"delivery_timeout": 10, "execution_timeout": 20, "poll_interval": 0.05} | kwargs
    return ssm.SsmBackend(IID, **kwargs)


def sends(emu: SsmEmulator) -> int:
    return emu.stats()["calls"].get("SendCommand", {}).get(IID, 0)


def test_boto3_uses_the_endpoint_from_the_environment(start: Start) -> None:
    emu = start()
    assert ssm.aws_client("ssm", None, None).meta.endpoint_url == emu.endpoint_url


def test_binary_output_is_exact_with_one_send_command(start: Start) -> None:
    emu = start()
    be = backend()
    result = be.run(r"printf 'a\000\377\n'; printf '\351t\351' >&2; exit 3")
    assert (result.rc, result.stdout_bytes, result.stderr_bytes) == (3, b"a\x00\xff\n", b"\xe9t\xe9")
    assert be.send_command_calls == sends(emu) == 1


def test_each_normal_run_is_one_send_command(start: Start) -> None:
    emu = start()
    be = backend()
    for n in range(5):
        assert be.run("echo %s", str(n)).stdout == f"{n}\n"
    assert be.send_command_calls == sends(emu) == 5
    assert emu.stats()["calls"]["DescribeInstanceInformation"] == {"*": 1}  # online check cached


def test_output_beyond_the_api_limits_is_exact(start: Start, tmp_path: Path) -> None:
    emu = start()
    data = tmp_path / "data"
    data.write_bytes(os.urandom(60_000))
    be = backend()
    result = be.run("cat %s; head -c 20000 %s >&2", str(data), str(data))
    assert result.stdout_bytes == data.read_bytes()
    assert result.stderr_bytes == data.read_bytes()[:20_000]
    assert 1 < be.send_command_calls == sends(emu) <= 6  # one per 22,000 base64 chars


def test_emulator_cuts_output_like_the_api_and_flags_exit_194(start: Start) -> None:
    emu = start()
    client = ssm.aws_client("ssm", None, None)
    script = "head -c 30000 /dev/zero | tr '\\0' o; head -c 9000 /dev/zero | tr '\\0' e >&2; exit 194"
    command_id = client.send_command(
        InstanceIds=[IID], DocumentName="AWS-RunShellScript", Parameters={"commands": [script]}
    )["Command"]["CommandId"]
    for _ in range(100):
        inv = client.get_command_invocation(CommandId=command_id, InstanceId=IID)
        if inv["Status"] not in ("Pending", "InProgress"):
            break
        time.sleep(0.05)
    assert (inv["Status"], inv["ResponseCode"]) == ("Failed", 194)
    assert inv["StandardOutputContent"] == "o" * 24_000
    assert len(inv["StandardErrorContent"]) == 8_000
    assert emu.stats()["reboots"] == 1
    listed = client.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
    assert len(listed[0]["CommandPlugins"][0]["Output"]) == 2_500


def test_backend_turns_exit_194_into_a_plain_result(start: Start) -> None:
    emu = start()
    assert backend().run("exit 194").rc == 194
    assert emu.stats()["reboots"] == 0


def test_visibility_delay_and_slow_states_are_waited_out(start: Start) -> None:
    emu = start(faults=Faults(visibility_delay=0.4, pending_time=0.2, delayed_time=0.2, in_progress_time=0.2))
    assert backend().run("echo late").stdout == "late\n"
    assert emu.stats()["calls"]["GetCommandInvocation"][IID] > 5


def test_throttling_is_retried(start: Start) -> None:
    emu = start(faults=Faults(throttle_every=3))
    be = backend()
    for n in range(3):
        assert be.run("echo %s", str(n)).stdout == f"{n}\n"
    assert sum(emu.stats()["throttled"].values()) >= 3
    assert be.send_command_calls == sends(emu) == 3


def test_forced_failure_raises(start: Start) -> None:
    start(faults=Faults(force_failed=True))
    with pytest.raises(ssm.SsmTransportError, match="forced failure") as err:
        backend().run("true")
    assert err.value.status == "Failed"


def test_execution_timeout_raises(start: Start) -> None:
    start(faults=Faults(execution_timeout=0.3))
    with pytest.raises(ssm.SsmTransportError) as err:
        backend().run("sleep 2")
    assert (err.value.status, err.value.details) == ("TimedOut", "ExecutionTimedOut")


def test_undeliverable_raises(start: Start) -> None:
    start(faults=Faults(undeliverable=frozenset({IID})))
    with pytest.raises(ssm.SsmTransportError, match=IID) as err:
        backend().run("true")
    assert err.value.details == "Undeliverable"


def test_offline_instance_raises_without_sending(start: Start) -> None:
    emu = start({}, offline=[IID])
    with pytest.raises(ssm.SsmTransportError, match="ConnectionLost"):
        backend().run("true")
    assert sends(emu) == 0


def test_unknown_instance_raises(start: Start) -> None:
    start({"i-0fffffffffffffff0": "local://"})
    with pytest.raises(ssm.SsmTransportError, match="not a managed instance"):
        backend().run("true")


def test_discovery_by_tag_pages_and_reports_offline(start: Start) -> None:
    docker = [f"i-{n:017x}" for n in range(1, 56)]  # 50 a page: the tag takes two
    other, offline, unknown = "i-0000000000000f00f", "i-00000000000000f10", "i-00000000000000f11"
    tags = {i: {"Role": "docker"} for i in [*docker, offline]} | {other: {"Role": "web"}}
    emu = start(dict.fromkeys([*docker, other], "local://"), tags=tags, offline=[offline])
    online, problems, *_ = ssm.discover_targets(f"tag:Role=docker,{other},{unknown}", None, None)
    assert online == [*docker, other]
    assert [str(p) for p in problems] == [
        f"{unknown}: not a managed instance in this account and region",
        f"{offline}: offline (PingStatus=ConnectionLost)",
    ]
    assert emu.stats()["calls"]["DescribeInstanceInformation"]["*"] == 3  # two pages for the tag


def test_send_command_by_tag_targets_every_tagged_instance(start: Start) -> None:
    ids = ["i-0000000000000000a", "i-0000000000000000b"]
    emu = start(dict.fromkeys(ids, "local://"), tags={i: {"Role": "docker"} for i in ids})
    client = ssm.aws_client("ssm", None, None)
    command = client.send_command(
        Targets=[{"Key": "tag:Role", "Values": ["docker"]}],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["echo hi"]},
    )["Command"]
    assert command["TargetCount"] == 2
    assert emu.stats()["calls"]["SendCommand"] == dict.fromkeys(ids, 1)


def test_testinfra_host_over_ssm(start: Start) -> None:
    emu = start()
    host = open_host(f"ssm://{IID}", ConnectOptions(command_timeout=20))
    assert host.backend.get_pytest_id() == f"ssm://{IID}"
    assert host.file("/etc/passwd").user == "root"
    assert host.check_output("echo %s", "it works") == "it works"
    assert sends(emu) == host.backend.send_command_calls


def test_stats_endpoint(start: Start) -> None:
    emu = start()
    backend().run("true")
    with urllib.request.urlopen(f"{emu.endpoint_url}/_stats") as response:
        assert json.load(response) == emu.stats()


@pytest.mark.parametrize("path", ["/", "/_stats", "/{token}x", "/{token}/"])
def test_requests_without_the_run_token_run_nothing(start: Start, tmp_path: Path, path: str) -> None:
    """Regression: any local user could SendCommand through the emulator, which runs commands as root."""
    emu = start()
    port = emu.endpoint_url.split("/")[2]
    marker = tmp_path / "ran"
    body = json.dumps(
        {"InstanceIds": [IID], "DocumentName": "AWS-RunShellScript", "Parameters": {"commands": [f"touch {marker}"]}}
    ).encode()
    request = urllib.request.Request(
        f"http://{port}{path.format(token=emu.token)}",
        data=body,
        headers={"X-Amz-Target": "AmazonSSM.SendCommand", "Content-Type": "application/x-amz-json-1.1"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400 and json.load(info.value)["__type"] == "UnrecognizedClientException"
    time.sleep(0.5)
    assert not marker.exists() and sends(emu) == 0
    assert len(emu.token) >= 32 and emu.token in emu.environ["AWS_ENDPOINT_URL_SSM"]
    with SsmEmulator({}) as other:
        assert other.token != emu.token  # a new secret per emulator


def test_output_over_the_cap_fails_after_one_send_command(start: Start) -> None:
    """The header announces the size: a host sending more than --max-output-mb costs no fetches."""
    emu = start()
    be = backend(max_output_bytes=100_000)
    assert len(be.run("head -c 90000 /dev/urandom").stdout_bytes) == 90_000  # spilled, fetched, under the cap
    fetched = sends(emu)
    with pytest.raises(ssm.SsmTransportError, match="over the limit of 100000 bytes"):
        be.run("head -c 1000000 /dev/urandom")
    assert sends(emu) == fetched + 1


def _rollout(start: Start, runner, **send) -> tuple[SsmEmulator, dict[str, str]]:
    """Send one command to four instances; wait until all are terminal; their statuses."""
    ids = [f"i-00000000000000{n:03x}" for n in range(1, 5)]
    emu = start(dict.fromkeys(ids), runner=runner)
    client = ssm.aws_client("ssm", None, None)
    command_id = client.send_command(
        InstanceIds=ids, DocumentName="AWS-RunShellScript", Parameters={"commands": ["true"]}, **send
    )["Command"]["CommandId"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pages = client.get_paginator("list_command_invocations").paginate(CommandId=command_id, MaxResults=2)
        statuses = {i["InstanceId"]: i["Status"] for page in pages for i in page["CommandInvocations"]}
        if len(statuses) == len(ids) and not {"Pending", "InProgress"} & set(statuses.values()):
            return emu, statuses
        time.sleep(0.05)
    raise AssertionError(f"rollout did not end: {statuses}")


def test_max_concurrency_bounds_the_invocations_running_at_once(start: Start) -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def runner(instance_id: str, script: str) -> tuple[int, str, str]:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return 0, "ok\n", ""

    _, statuses = _rollout(start, runner, MaxConcurrency="2", MaxErrors="100%")
    assert set(statuses.values()) == {"Success"} and peak[0] == 2


def test_max_errors_stops_sending_to_more_instances(start: Start) -> None:
    """The API's default MaxErrors is 0: after the first failure the rest are not sent."""
    _, statuses = _rollout(start, lambda i, s: (1, "", "no\n"), MaxConcurrency="1")
    assert list(statuses.values()) == ["Failed", "Cancelled", "Cancelled", "Cancelled"]
    _, statuses = _rollout(start, lambda i, s: (1, "", "no\n"), MaxConcurrency="1", MaxErrors="100%")
    assert set(statuses.values()) == {"Failed"}


def test_s3_output_needs_a_store(start: Start) -> None:
    start()
    with pytest.raises(ssm.ClientError, match="InvalidOutputLocation"):
        ssm.aws_client("ssm", None, None).send_command(
            InstanceIds=[IID],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": ["true"]},
            OutputS3BucketName="bkt",
        )
