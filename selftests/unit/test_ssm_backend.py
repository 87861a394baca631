"""SsmBackend against botocore's Stubber.

AWS cannot be reached offline, so the Stubber plays the SSM API: it returns queued responses
and checks request parameters. The agent's side is real: the wrapper and fetch scripts run
under the local sh, and what they print becomes StandardOutputContent.
"""

import os
import subprocess
from pathlib import Path

import pytest
from botocore.stub import ANY, Stubber

from cisaudit.host.ssm import backend as ssm
from cisaudit.host.ssm import frame

IID = "i-0123456789abcdef0"
CID = "11111111-2222-3333-4444-555555555555"
NONCE = "0" * 32


def agent_stdout(script: str, **env: str) -> str:
    """What the SSM agent would report as stdout for `script`, and its exit code is checked."""
    proc = subprocess.run(["sh", "-c", script], capture_output=True, env={"PATH": "/usr/bin:/bin", **env})
    assert proc.returncode == 0  # the wrapper never hands the agent a code with a meaning
    return proc.stdout.decode("ascii")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setattr(ssm.secrets, "token_hex", lambda _n: NONCE)
    monkeypatch.setattr(ssm, "_GRACE", 0.0)


@pytest.fixture
def be(env: None) -> ssm.SsmBackend:
    return ssm.SsmBackend(IID, region="us-east-1", delivery_timeout=5, execution_timeout=5, poll_interval=0)


@pytest.fixture
def stub(be: ssm.SsmBackend):
    with Stubber(be.client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def online(stub: Stubber, ping: str = "Online") -> None:
    stub.add_response(
        "describe_instance_information",
        {"InstanceInformationList": [{"InstanceId": IID, "PingStatus": ping}]},
        {"Filters": [{"Key": "InstanceIds", "Values": [IID]}]},
    )


def sent(stub: Stubber, command_id: str = CID) -> None:
    params = {
        "InstanceIds": [IID],
        "DocumentName": "AWS-RunShellScript",
        "TimeoutSeconds": 30,
        "Parameters": ANY,
    }
    stub.add_response("send_command", {"Command": {"CommandId": command_id}}, params)


def invocation(stub: Stubber, status: str, details: str | None = None, command_id: str = CID, **extra) -> None:
    response = {"CommandId": command_id, "InstanceId": IID, "Status": status, "StatusDetails": details or status}
    stub.add_response("get_command_invocation", response | extra, {"CommandId": command_id, "InstanceId": IID})


def completed(stub: Stubber, command: str, chunk: int | None = frame.CHUNK) -> None:
    out = agent_stdout(frame.wrapper_script(command, NONCE, chunk))
    invocation(stub, "Success", ResponseCode=0, StandardOutputContent=out, StandardErrorContent="")


def test_hostspec_must_be_an_instance_id(env: None) -> None:
    for bad in ("web1", "i-123", "i-0123456789ABCDEF0", "ssm://i-0123456789abcdef0"):
        with pytest.raises(ValueError, match="managed instance id"):
            ssm.SsmBackend(bad)
    assert ssm.SsmBackend("mi-0123456789abcdef0").get_pytest_id() == "ssm://mi-0123456789abcdef0"


def test_client_retries_in_adaptive_mode(be: ssm.SsmBackend) -> None:
    # botocore reads max_attempts as retries after the first try: 11 attempts in all.
    assert be.client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 11}
    assert be.client is ssm.aws_client("ssm", "us-east-1", None)


def test_polls_through_invisible_and_running_states(be: ssm.SsmBackend, stub: Stubber) -> None:
    online(stub)
    sent(stub)
    stub.add_client_error("get_command_invocation", "InvocationDoesNotExist")
    invocation(stub, "Pending")
    invocation(stub, "Delayed")
    invocation(stub, "InProgress")
    completed(stub, "echo out; echo err >&2")
    result = be.run("echo out; echo err >&2")
    assert (result.rc, result.stdout, result.stderr) == (0, "out\n", "err\n")
    assert be.send_command_calls == 1


def test_nonzero_exit_is_a_result_not_an_error(be: ssm.SsmBackend, stub: Stubber) -> None:
    online(stub)
    sent(stub)
    completed(stub, "echo nope >&2; exit 3")
    result = be.run("exit 3")
    assert (result.rc, result.stderr) == (3, "nope\n")


def test_online_check_is_cached(be: ssm.SsmBackend, stub: Stubber) -> None:
    online(stub)
    for _ in range(2):
        sent(stub)
        completed(stub, "true")
        assert be.run("true").rc == 0
    assert be.send_command_calls == 2


@pytest.mark.parametrize("ping", ["ConnectionLost", "Inactive"])
def test_offline_instance_raises_before_sending(be: ssm.SsmBackend, stub: Stubber, ping: str) -> None:
    online(stub, ping)
    with pytest.raises(ssm.SsmTransportError, match=f"not Online.*{ping}"):
        be.run("true")
    assert be.send_command_calls == 0


def test_unmanaged_instance_raises(be: ssm.SsmBackend, stub: Stubber) -> None:
    stub.add_response("describe_instance_information", {"InstanceInformationList": []})
    with pytest.raises(ssm.SsmTransportError, match="not a managed instance"):
        be.run("true")


@pytest.mark.parametrize(
    ("status", "details"),
    [
        ("TimedOut", "ExecutionTimedOut"),
        ("TimedOut", "DeliveryTimedOut"),
        ("Cancelled", "Cancelled"),
        ("Cancelling", "Cancelling"),
        ("Failed", "Undeliverable"),
        ("Failed", "Terminated"),
        ("Success", "Execution Timed Out"),  # detail wins over status; spaced form as documented
        ("Undeliverable", "Undeliverable"),
        ("Terminated", "Terminated"),
    ],
)
def test_terminal_transport_statuses_raise(be: ssm.SsmBackend, stub: Stubber, status: str, details: str) -> None:
    online(stub)
    sent(stub)
    invocation(stub, "InProgress")
    invocation(stub, status, details)
    with pytest.raises(ssm.SsmTransportError) as err:
        be.run("true")
    assert (err.value.instance_id, err.value.command_id) == (IID, CID)
    assert (err.value.status, err.value.details) == (status, details)
    assert IID in str(err.value) and CID in str(err.value) and status in str(err.value)


def test_failed_without_frame_raises_with_stderr(be: ssm.SsmBackend, stub: Stubber) -> None:
    online(stub)
    sent(stub)
    invocation(stub, "Failed", ResponseCode=127, StandardOutputContent="", StandardErrorContent="sh: gzip: not found")
    with pytest.raises(ssm.SsmTransportError, match="no intact result.*gzip: not found"):
        be.run("true")


def test_wrapper_without_temp_dir_raises(be: ssm.SsmBackend, stub: Stubber) -> None:
    online(stub)
    sent(stub)
    out = agent_stdout(frame.wrapper_script("true", NONCE), TMPDIR="/nonexistent")
    invocation(stub, "Success", ResponseCode=0, StandardOutputContent=out, StandardErrorContent="mktemp: failed")
    with pytest.raises(ssm.SsmTransportError, match="no frame header"):
        be.run("true")


def test_throttled_polls_are_retried(be: ssm.SsmBackend, stub: Stubber) -> None:
    # botocore already retried 10 times by the time this reaches the backend.
    online(stub)
    sent(stub)
    stub.add_client_error("get_command_invocation", "ThrottlingException", "Rate exceeded")
    stub.add_client_error("get_command_invocation", "ThrottlingException", "Rate exceeded")
    completed(stub, "echo ok")
    assert be.run("echo ok").stdout == "ok\n"


def test_other_api_errors_raise(be: ssm.SsmBackend, stub: Stubber) -> None:
    online(stub)
    stub.add_client_error("send_command", "InvalidInstanceId", "not in a valid state")
    with pytest.raises(ssm.SsmTransportError, match="SendCommand failed.*InvalidInstanceId"):
        be.run("true")


def test_stuck_pending_times_out_and_cancels(env: None) -> None:
    be = ssm.SsmBackend(IID, region="us-east-1", delivery_timeout=0, poll_interval=0)
    with Stubber(be.client) as stub:
        online(stub)
        sent(stub)
        invocation(stub, "Pending")
        stub.add_response("cancel_command", {}, {"CommandId": CID, "InstanceIds": [IID]})
        with pytest.raises(ssm.SsmTransportError, match="no result within the timeouts, still Pending"):
            be.run("true")
        stub.assert_no_pending_responses()


def test_binary_and_non_utf8_output_round_trips(be: ssm.SsmBackend, stub: Stubber) -> None:
    command = r"printf 'a\000\377\n\r\nz'; printf '\351t\351 \200' >&2; exit 42"
    online(stub)
    sent(stub)
    completed(stub, command)
    result = be.run(command)
    assert result.rc == 42
    assert result.stdout_bytes == b"a\x00\xff\n\r\nz"
    assert result.stderr_bytes == b"\xe9t\xe9 \x80"


def test_args_are_quoted_like_testinfra(be: ssm.SsmBackend, stub: Stubber) -> None:
    online(stub)
    sent(stub)
    completed(stub, "printf %s 'a b; rm -rf /'")
    assert be.run("printf %s %s", "%s", "a b; rm -rf /").stdout == "a b; rm -rf /"


def test_large_output_is_fetched_in_chunks(be: ssm.SsmBackend, stub: Stubber, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(os.urandom(50_000))
    command = f"cat {data}; head -c 9000 {data} >&2"
    out = agent_stdout(frame.wrapper_script(command, NONCE))
    header = frame.read_result(out, NONCE)
    chunks = -(-header.size // frame.CHUNK)
    assert chunks >= 3 and len(out) < 24_000 and Path(header.directory).is_dir()
    online(stub)
    sent(stub)
    invocation(stub, "Success", ResponseCode=0, StandardOutputContent=out)
    for index in range(1, chunks):
        more = agent_stdout(frame.fetch_script(header.directory, NONCE, index, index == chunks - 1))
        assert len(more) < 24_000
        sent(stub, f"{CID[:-1]}{index}")
        invocation(stub, "Success", command_id=f"{CID[:-1]}{index}", StandardOutputContent=more)
    result = be.run(command)
    assert result.stdout_bytes == data.read_bytes()
    assert result.stderr_bytes == data.read_bytes()[:9000]
    assert be.send_command_calls == chunks
    assert not Path(header.directory).exists()  # the last fetch cleaned up


def test_output_cut_by_the_api_raises(be: ssm.SsmBackend, stub: Stubber) -> None:
    out = agent_stdout(frame.wrapper_script("head -c 40000 /dev/urandom", NONCE, chunk=None))
    online(stub)
    sent(stub)
    invocation(stub, "Success", StandardOutputContent=out[:24_000])
    with pytest.raises(ssm.SsmTransportError, match="cut short"):
        be.run("head -c 40000 /dev/urandom")


def test_s3_bucket_holds_output_too_long_for_the_api(env: None, tmp_path: Path) -> None:
    be = ssm.SsmBackend(IID, region="us-east-1", poll_interval=0, s3_bucket="audit-out")
    data = tmp_path / "data"
    data.write_bytes(os.urandom(40_000))
    command = f"cat {data}"
    out = agent_stdout(frame.wrapper_script(command, NONCE, chunk=None))
    header = frame.read_result(out, NONCE)
    assert header.size > 24_000 and not Path(header.directory).exists()
    key = f"cisaudit-ssm/{CID}/{IID}/awsrunShellScript/0.awsrunShellScript/stdout"
    with Stubber(be.client) as stub, Stubber(ssm.aws_client("s3", "us-east-1", None)) as s3:
        online(stub)
        params = {
            "InstanceIds": [IID],
            "DocumentName": "AWS-RunShellScript",
            "TimeoutSeconds": 60,
            "Parameters": ANY,
            "OutputS3BucketName": "audit-out",
            "OutputS3KeyPrefix": "cisaudit-ssm",
        }
        stub.add_response("send_command", {"Command": {"CommandId": CID}}, params)
        url = f"https://s3.us-east-1.amazonaws.com/audit-out/{key}"
        invocation(stub, "Success", StandardOutputContent=out[:24_000], StandardOutputUrl=url)
        s3.add_response("get_object", {"Body": _Body(out.encode())}, {"Bucket": "audit-out", "Key": key})
        assert be.run(command).stdout_bytes == data.read_bytes()
    assert be.send_command_calls == 1


class _Body:
    def __init__(self, data: bytes):
        self.data = data
        self.largest_read = 0

    def read(self, amt: int | None = None) -> bytes:  # botocore's StreamingBody.read(amt)
        chunk = self.data[:amt]
        self.largest_read = max(self.largest_read, len(chunk))
        return chunk


@pytest.mark.parametrize("rc", [0, 1, 137, 168, 194, 255])
def test_wrapper_always_exits_zero(rc: int) -> None:
    out = agent_stdout(frame.wrapper_script(f"exit {rc}", NONCE))  # asserts the sh exit code is 0
    header = frame.read_result(out, NONCE)
    assert frame.decode(header.first, header.sha256, 1024) == (rc, b"", b"")


def test_corrupt_frames_are_rejected() -> None:
    header = frame.read_result(agent_stdout(frame.wrapper_script("echo hi", NONCE)), NONCE)
    with pytest.raises(frame.FrameError, match="sha256"):
        frame.decode(header.first[:-4] + "AAAA", header.sha256, 1024)
    with pytest.raises(frame.FrameError, match="no frame header"):
        frame.read_result("CISAUDIT-SSM1 other-nonce 4 /tmp/x " + "0" * 64, NONCE)
    with pytest.raises(frame.FrameError, match="refusing"):
        frame.fetch_script("/; rm -rf /", NONCE, 1, True)


def _describe(stub: Stubber, filters: list, infos: list, token: str | None = None, next_token=None) -> None:
    params = {"Filters": filters, "MaxResults": 50} | ({"NextToken": token} if token else {})
    response = {"InstanceInformationList": infos} | ({"NextToken": next_token} if next_token else {})
    stub.add_response("describe_instance_information", response, params)


def test_discover_targets_pages_tags_and_names_problems(env: None) -> None:
    ids = [f"i-{n:017x}" for n in range(1, 6)]
    tag = [{"Key": "tag:Role", "Values": ["docker"]}]
    with Stubber(ssm.aws_client("ssm", "us-east-1", None)) as stub:
        _describe(stub, tag, [{"InstanceId": ids[0], "PingStatus": "Online"}], next_token="p2")
        _describe(stub, tag, [{"InstanceId": ids[1], "PingStatus": "ConnectionLost"}], token="p2")
        _describe(stub, [{"Key": "tag:Role", "Values": ["none"]}], [])
        _describe(
            stub,
            [{"Key": "InstanceIds", "Values": [ids[2], ids[3]]}],
            [{"InstanceId": ids[2], "PingStatus": "Online"}],
        )
        online_ids, problems, tags, _ = ssm.discover_targets(
            f"tag:Role=docker, {ids[2]},{ids[3]},tag:Role=none,web1,tag:oops", "us-east-1"
        )
    assert online_ids == [ids[0], ids[2]]
    assert tags == {("Role", "docker"): [ids[0]], ("Role", "none"): []}
    assert [str(p) for p in problems] == [
        "tag:Role=none: no managed instance has this tag",
        "web1: neither an instance id (i-...) nor tag:Key=Value",
        "tag:oops: expected tag:Key=Value",
        f"{ids[3]}: not a managed instance in this account and region",
        f"{ids[1]}: offline (PingStatus=ConnectionLost)",
    ]
    refused = [(p.target, p.why.refuses_run) for p in problems]
    assert refused == [("tag:Role=none", True), ("web1", True), ("tag:oops", True), (ids[3], False), (ids[1], False)]


def test_discover_targets_names_ids_the_api_rejects(env: None) -> None:
    good, bad = "i-0000000000000000a", "i-0000000000000000b"
    with Stubber(ssm.aws_client("ssm", "us-east-1", None)) as stub:
        stub.add_client_error("describe_instance_information", "InvalidInstanceId")
        _describe(stub, [{"Key": "InstanceIds", "Values": [good]}], [{"InstanceId": good, "PingStatus": "Online"}])
        stub.add_client_error("describe_instance_information", "InvalidInstanceId")
        found = ssm.discover_targets(f"{good},{bad}", "us-east-1")
    assert (found.online, found.tags) == ([good], {})
    assert found.problems == [
        ssm.TargetProblem(bad, ssm.Unaudited.NOT_MANAGED, "not a managed instance in this account and region")
    ]


def spilled(stub: Stubber, command: str) -> frame.Header:
    """Send `command` as the agent would run it; its output spills to more than one chunk."""
    out = agent_stdout(frame.wrapper_script(command, NONCE))
    header = frame.read_result(out, NONCE)
    assert header.size > frame.CHUNK
    online(stub)
    sent(stub)
    invocation(stub, "Success", ResponseCode=0, StandardOutputContent=out)
    return header


def test_empty_chunk_ends_the_fetch_loop(be: ssm.SsmBackend, stub: Stubber, tmp_path: Path) -> None:
    """Regression: a spill dir cleaned (or an instance rebooted) between fetches made the loop
    send SendCommand after SendCommand without end."""
    data = tmp_path / "data"
    data.write_bytes(os.urandom(50_000))
    header = spilled(stub, f"cat {data}")
    subprocess.run(["rm", "-rf", header.directory], check=True)  # what a tmp cleaner does
    more = agent_stdout(frame.fetch_script(header.directory, NONCE, 1, False))
    sent(stub, f"{CID[:-1]}1")
    invocation(stub, "Success", command_id=f"{CID[:-1]}1", StandardOutputContent=more)
    with pytest.raises(ssm.SsmTransportError, match=f"chunk 1 has 0 characters, expected {frame.CHUNK}"):
        be.run(f"cat {data}")
    assert be.send_command_calls == 2


class SlowClock:
    """Fake monotonic time for the backend: every poll of a command costs `step` seconds."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def monotonic(self) -> float:
        return self.now

    def sleep(self, _seconds: float) -> None:
        self.now += self.step


def test_slow_fetches_share_one_deadline(
    be: ssm.SsmBackend, stub: Stubber, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Regression: each follow-up fetch of spilled output had its own timeouts, so a host that
    brought every chunk, but slowly, kept the run going for as many commands as it had chunks.
    Each command here takes 3 s (well within its own 5 s + 5 s); together they pass the
    command's one deadline (10 s) at the fourth SendCommand, long before the last of the chunks."""
    monkeypatch.setattr(ssm, "time", SlowClock(step=3.0))
    data = tmp_path / "data"
    data.write_bytes(os.urandom(200_000))
    header = spilled(stub, f"cat {data}")
    chunks = -(-header.size // frame.CHUNK)
    for index in range(1, 4):  # what the host answers before the deadline passes
        more = agent_stdout(frame.fetch_script(header.directory, NONCE, index, False))
        sent(stub, f"{CID[:-1]}{index}")
        invocation(stub, "Success", command_id=f"{CID[:-1]}{index}", StandardOutputContent=more)
    with pytest.raises(ssm.SsmTransportError) as caught:
        be.run(f"cat {data}")
    message = str(caught.value)
    assert f"command deadline passed at {4 * frame.CHUNK} of {header.size} characters" in message
    assert "\n" not in message
    assert be.send_command_calls == 4 and chunks > 10
    subprocess.run(["rm", "-rf", header.directory], check=True)


def test_announced_size_over_the_limit_is_refused_without_fetching(env: None, tmp_path: Path) -> None:
    be = ssm.SsmBackend(IID, region="us-east-1", delivery_timeout=5, poll_interval=0, max_output_bytes=20_000)
    data = tmp_path / "data"
    data.write_bytes(os.urandom(50_000))
    with Stubber(be.client) as stub:
        header = spilled(stub, f"cat {data}")
        with pytest.raises(ssm.SsmTransportError, match=rf"announces {header.size} characters of output, over"):
            be.run(f"cat {data}")
        stub.assert_no_pending_responses()
    assert be.send_command_calls == 1
    subprocess.run(["rm", "-rf", header.directory], check=True)


def test_gzip_bomb_is_not_inflated_past_the_limit() -> None:
    """Regression: 130 KB of base64 from 100 MB of zeros was inflated whole."""
    out = agent_stdout(frame.wrapper_script("head -c 100000000 /dev/zero", NONCE, chunk=None))
    header = frame.read_result(out, NONCE)
    assert header.size < 200_000
    with pytest.raises(frame.OutputTooLarge, match="over the limit of 1048576 bytes"):
        frame.decode(header.first, header.sha256, 1 << 20)
    assert frame.decode(header.first, header.sha256, 100_000_000)[1] == bytes(100_000_000)


def test_s3_object_is_read_only_up_to_the_limit(env: None) -> None:
    be = ssm.SsmBackend(IID, region="us-east-1", poll_interval=0, s3_bucket="audit-out", max_output_bytes=1000)
    key = f"cisaudit-ssm/{CID}/{IID}/awsrunShellScript/0.awsrunShellScript/stdout"
    body = _Body(b"x" * (50 << 20))
    with Stubber(be.client) as stub, Stubber(ssm.aws_client("s3", "us-east-1", None)) as s3:
        online(stub)
        stub.add_response("send_command", {"Command": {"CommandId": CID}}, None)
        url = f"https://s3.us-east-1.amazonaws.com/audit-out/{key}"
        invocation(stub, "Success", StandardOutputContent="", StandardOutputUrl=url)
        s3.add_response("get_object", {"Body": body}, {"Bucket": "audit-out", "Key": key})
        with pytest.raises(ssm.SsmTransportError, match="over the limit of 1000 bytes"):
            be.run("true")
    assert body.largest_read <= frame.max_b64_size(1000) + 4097


def test_a_frame_is_bound_only_to_the_header_the_service_reports() -> None:
    """Issue 21.5: the S3 frame must carry the very header (length, sha256, the instance's own
    random temp dir) that the service reports at the head of that instance's stdout."""
    out = agent_stdout(frame.wrapper_script("echo hi", NONCE, chunk=None))
    other = agent_stdout(frame.wrapper_script("echo hi", NONCE, chunk=None))  # same output, another run
    header = frame.read_result(out, NONCE)
    assert frame.bound(header, out[:2500], NONCE)
    assert not frame.bound(header, other[:2500], NONCE)  # another mktemp dir
    assert not frame.bound(header, out.replace(NONCE, "1" * 32), NONCE)
    assert not frame.bound(header, "", NONCE)


def test_ids_are_asked_50_to_a_call_never_by_listing_the_whole_fleet(env: None) -> None:
    """A shard's ids (--ssm-instances-file, or --hosts over 50 ssm:// ids) cost their own calls:
    a listing of every managed instance was 2,000 pages at 100,000 instances, in every shard."""
    ids = [f"i-{n:017x}" for n in range(1, 121)]
    pages: list[list[str]] = []
    with Stubber(ssm.aws_client("ssm", "us-east-1", None)) as stub:
        for chunk in (ids[:50], ids[50:100], ids[100:]):
            infos = [{"InstanceId": i, "PingStatus": "Online" if i != ids[7] else "ConnectionLost"} for i in chunk]
            _describe(stub, [{"Key": "InstanceIds", "Values": chunk}], infos[:-1] if chunk[-1] == ids[-1] else infos)
        found = ssm.describe_instances(
            ids, "us-east-1", None, lambda page: pages.append([i["InstanceId"] for i in page])
        )
        stub.assert_no_pending_responses()
    assert found.online == [i for i in ids[:-1] if i != ids[7]] and found.tags == {}
    assert [str(p) for p in found.problems] == [
        f"{ids[-1]}: not a managed instance in this account and region",
        f"{ids[7]}: offline (PingStatus=ConnectionLost)",
    ]
    assert [len(p) for p in pages] == [50, 50, 19]


def test_an_id_the_api_rejects_is_found_by_halves(env: None) -> None:
    ids = [f"i-{n:017x}" for n in range(1, 5)]
    online = [{"InstanceId": i, "PingStatus": "Online"} for i in ids]
    with Stubber(ssm.aws_client("ssm", "us-east-1", None)) as stub:
        stub.add_client_error("describe_instance_information", "InvalidInstanceId")  # all four
        _describe(stub, [{"Key": "InstanceIds", "Values": ids[:2]}], online[:2])
        stub.add_client_error("describe_instance_information", "InvalidInstanceId")  # ids[2:]
        _describe(stub, [{"Key": "InstanceIds", "Values": ids[2:3]}], online[2:3])
        stub.add_client_error("describe_instance_information", "InvalidInstanceId")  # ids[3]
        found = ssm.describe_instances(ids, "us-east-1")
        stub.assert_no_pending_responses()
    assert found.online == ids[:3]
    assert [str(p) for p in found.problems] == [f"{ids[3]}: not a managed instance in this account and region"]


def test_over_50_ids_as_targets_are_asked_50_to_a_call(env: None) -> None:
    """--hosts/--ssm-targets with 60 ids: two calls by id (was one listing of every managed instance)."""
    ids = [f"i-{n:017x}" for n in range(1, 61)]
    with Stubber(ssm.aws_client("ssm", "us-east-1", None)) as stub:
        for chunk in (ids[:50], ids[50:]):
            _describe(
                stub,
                [{"Key": "InstanceIds", "Values": chunk}],
                [{"InstanceId": i, "PingStatus": "Online"} for i in chunk],
            )
        assert ssm.discover_targets(",".join(ids), "us-east-1").online == ids
        stub.assert_no_pending_responses()
