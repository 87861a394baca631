"""testinfra backend for `ssm://i-...`: commands run through AWS Systems Manager Run Command.

Each run() is one SendCommand of AWS-RunShellScript plus GetCommandInvocation polls; the
command's exact rc, stdout and stderr come back through the frame in `frame.py`. Outputs
too long for one response need follow-up commands (or one S3 read when s3_bucket is set).
Transport problems raise SsmTransportError; they never turn into a command result.
"""

import contextlib
import math
import os
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from enum import Enum
from typing import Any, NamedTuple

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from testinfra.backend.base import BaseBackend, CommandResult

from cisaudit.host.hostspec import INSTANCE_ID
from cisaudit.host.ssm import frame
from cisaudit.host.ssm.fanout import BROKEN_DETAILS as _BROKEN_DETAILS
from cisaudit.host.ssm.fanout import COMPLETED as _COMPLETED

# Adaptive retry: standard retries plus a client-side rate limiter that slows down on
# throttling, which a fleet's worth of calls from one client meets (README: AWS Systems Manager).
CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, max_pool_connections=32)
_RUNNING = {"Pending", "InProgress", "Delayed"}
# Slack past our own timeouts so the service can report its TimedOut first.
_GRACE = 5.0
S3_PREFIX = "cisaudit-ssm"  # where output goes in --ssm-s3-bucket (README: IAM)

_lock = threading.Lock()
_sessions: dict[tuple[str | None, str | None, int], boto3.Session] = {}
_clients: dict[tuple[Any, ...], BaseClient] = {}


def aws_client(service: str, region: str | None, profile: str | None) -> BaseClient:
    """One session per process and (region, profile), one client per service on it."""
    pid = os.getpid()  # urllib3 pools must not cross a fork
    # The endpoint variables are part of the key so a new emulator port gets a new client.
    endpoint = (
        os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}"),
        os.environ.get("AWS_ENDPOINT_URL"),
    )
    key = (service, region, profile, pid, endpoint)
    with _lock:
        if key not in _clients:
            skey = (region, profile, pid)
            if skey not in _sessions:
                _sessions[skey] = boto3.Session(region_name=region, profile_name=profile)
            _clients[key] = _sessions[skey].client(service, config=CONFIG)
        return _clients[key]


class SsmTransportError(RuntimeError):
    """SSM could not run the command or return its result."""

    def __init__(
        self,
        instance_id: str,
        command_id: str | None,
        message: str,
        status: str | None = None,
        details: str | None = None,
    ):
        self.instance_id = instance_id
        self.command_id = command_id
        self.status = status
        self.details = details
        super().__init__(
            f"ssm://{instance_id} command {command_id or '-'}: {message}"
            f" (Status={status or '-'}, StatusDetails={details or '-'})"
        )


class SsmBackend(BaseBackend):
    NAME = "ssm"

    def __init__(
        self,
        hostspec: str,
        region: str | None = None,
        profile: str | None = None,
        delivery_timeout: float = 60,
        execution_timeout: float = 600,
        poll_interval: float = 0.5,
        s3_bucket: str | None = None,
        max_output_bytes: int = 32 << 20,
        *args: Any,
        **kwargs: Any,
    ):
        if not INSTANCE_ID.fullmatch(hostspec):
            raise ValueError(f"ssm:// needs a managed instance id like i-0123456789abcdef0, got {hostspec!r}")
        self.instance_id = hostspec
        self.region = region
        self.profile = profile
        self.delivery_timeout = float(delivery_timeout)
        self.execution_timeout = float(execution_timeout)
        self.poll_interval = float(poll_interval)
        self.s3_bucket = s3_bucket
        self.max_output_bytes = int(max_output_bytes)
        self.send_command_calls = 0
        self._online = False
        super().__init__(hostspec, *args, **kwargs)

    @property
    def client(self) -> BaseClient:
        return aws_client("ssm", self.region, self.profile)

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        cmd = self.get_command(command, *args)
        self._check_online()
        nonce = secrets.token_hex(16)
        chunk = None if self.s3_bucket else frame.CHUNK
        # One deadline for the command and every follow-up fetch of its output.
        deadline = time.monotonic() + self.delivery_timeout + self.execution_timeout + 2 * _GRACE
        invocation = self._invoke(frame.wrapper_script(cmd, nonce, chunk), deadline)
        rc, stdout, stderr = self._collect(invocation, nonce, deadline)
        return self.result(rc, self.encode(cmd), stdout, stderr)

    def _error(self, message: str, inv: dict[str, Any] | None = None) -> SsmTransportError:
        inv = inv or {}
        return SsmTransportError(
            self.instance_id, inv.get("CommandId"), message, inv.get("Status"), inv.get("StatusDetails")
        )

    def _check_online(self) -> None:
        if self._online:
            return
        try:
            infos = self.client.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [self.instance_id]}]
            )["InstanceInformationList"]
        except (ClientError, BotoCoreError) as exc:
            raise self._error(f"DescribeInstanceInformation failed: {exc}") from exc
        if not infos:
            raise self._error("not a managed instance in this account and region")
        ping = infos[0].get("PingStatus")
        if ping != "Online":
            raise SsmTransportError(self.instance_id, None, f"instance is not Online (PingStatus={ping})")
        self._online = True

    def send_unframed(self, script: str) -> str:
        """Send one AWS-RunShellScript as it is and return its command id without waiting: its exit
        code means what the agent says (194: reboot the instance; --reboot-proof, host/reboot.py)."""
        self._check_online()
        self.send_command_calls += 1
        try:
            command_id: str = self.client.send_command(**self._params(script))["Command"]["CommandId"]
        except (ClientError, BotoCoreError) as exc:
            raise self._error(f"SendCommand failed: {exc}") from exc
        return command_id

    def _params(self, script: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "InstanceIds": [self.instance_id],
            "DocumentName": "AWS-RunShellScript",
            # The API rejects a delivery timeout under 30 s; our own wait below is still exact.
            "TimeoutSeconds": max(30, math.ceil(self.delivery_timeout)),
            "Parameters": {
                "commands": [script],
                "executionTimeout": [str(max(1, math.ceil(self.execution_timeout)))],
            },
        }
        if self.s3_bucket:
            params |= {"OutputS3BucketName": self.s3_bucket, "OutputS3KeyPrefix": S3_PREFIX}
        return params

    def _invoke(self, script: str, deadline: float) -> dict[str, Any]:
        """Send one AWS-RunShellScript and wait for it to complete; return the invocation."""
        return self._wait(self.send_unframed(script), deadline)

    def _wait(self, command_id: str, deadline: float) -> dict[str, Any]:
        sent = time.monotonic()
        started: float | None = None
        known = {"CommandId": command_id}
        while True:
            time.sleep(self.poll_interval)
            now = time.monotonic()
            if started is None:
                limit = sent + self.delivery_timeout + _GRACE
            else:
                limit = started + self.execution_timeout + _GRACE
            limit = min(limit, deadline)
            try:
                inv: dict[str, Any] = self.client.get_command_invocation(
                    CommandId=command_id, InstanceId=self.instance_id
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                # Right after SendCommand the invocation may not be visible yet (eventual
                # consistency); throttling left over after botocore's retries is worth a later poll.
                if code in ("InvocationDoesNotExist", "ThrottlingException") and now < limit:
                    continue
                raise self._error(f"GetCommandInvocation failed: {exc}", known) from exc
            except BotoCoreError as exc:
                raise self._error(f"GetCommandInvocation failed: {exc}", known) from exc
            status = inv.get("Status")
            details = (inv.get("StatusDetails") or "").replace(" ", "")
            if status in _COMPLETED and details not in _BROKEN_DETAILS:
                return inv
            if status not in _RUNNING or details in _BROKEN_DETAILS:
                raise self._error("command did not complete", inv)
            if status == "InProgress" and started is None:
                started = now
            elif now > limit:
                self._cancel(command_id)
                raise self._error(f"no result within the timeouts, still {status}", inv)

    def _cancel(self, command_id: str) -> None:
        # Best effort, so a late delivery does not run the command after we gave up; a
        # failure here must not hide the timeout being reported.
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.cancel_command(CommandId=command_id, InstanceIds=[self.instance_id])

    def _collect(self, inv: dict[str, Any], nonce: str, deadline: float) -> tuple[int, bytes, bytes]:
        try:
            try:
                header = frame.read_result(inv.get("StandardOutputContent", ""), nonce)
            except frame.FrameError:
                if not (self.s3_bucket and inv.get("StandardOutputUrl")):
                    raise
                header = frame.read_result(self._s3_stdout(inv), nonce)
            if header.size > frame.max_b64_size(self.max_output_bytes):
                raise frame.OutputTooLarge(
                    f"the host announces {header.size} characters of output, over the limit of "
                    f"{self.max_output_bytes} bytes (--max-output-mb)"
                )
            return frame.decode(self._fetch_rest(header, nonce, deadline), header.sha256, self.max_output_bytes)
        except frame.FrameError as exc:
            stderr = inv.get("StandardErrorContent", "")[:500]
            raise self._error(
                f"no intact result ({exc}); ResponseCode={inv.get('ResponseCode')}, stderr={stderr!r}",
                inv,
            ) from exc

    def _fetch_rest(self, header: frame.Header, nonce: str, deadline: float) -> str:
        """The whole base64 of a spilled frame: every fetch must bring exactly the next chunk."""
        parts, have, index = [header.first], len(header.first), 1
        if have < header.size and have != frame.CHUNK:
            raise frame.FrameError(f"first chunk has {have} characters, expected {frame.CHUNK}")
        while have < header.size:
            if time.monotonic() > deadline:
                raise frame.FrameError(f"command deadline passed at {have} of {header.size} characters")
            expected = min(frame.CHUNK, header.size - have)
            last = have + expected >= header.size
            more = self._invoke(frame.fetch_script(header.directory, nonce, index, last), deadline)
            chunk = frame.read_chunk(more.get("StandardOutputContent", ""), nonce, index)
            if len(chunk) != expected:  # the spill dir is gone (cleaned, rebooted) or was changed
                raise frame.FrameError(f"chunk {index} has {len(chunk)} characters, expected {expected}")
            parts.append(chunk)
            have, index = have + expected, index + 1
        if have != header.size:
            raise frame.FrameError(f"frame has {have} characters, header says {header.size}")
        return "".join(parts)

    def _s3_stdout(self, inv: dict[str, Any]) -> str:
        try:
            return read_s3_stdout(
                inv["StandardOutputUrl"], self.s3_bucket or "", self.max_output_bytes, self.region, self.profile
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(f"reading {inv['StandardOutputUrl']} failed: {exc}", inv) from exc


def s3_key(url: str, bucket: str) -> str:
    """The object key in an SSM StandardOutputUrl (virtual-hosted or path-style)."""
    parsed = urllib.parse.urlparse(url)
    key = urllib.parse.unquote(parsed.path).lstrip("/")
    if not parsed.netloc.startswith(f"{bucket}."):  # path-style URL: /bucket/key
        key = key.removeprefix(f"{bucket}/")
    return key


def read_s3_stdout(url_or_key: str, bucket: str, max_output_bytes: int, region: str | None, profile: str | None) -> str:
    """A frame's text from S3, read no further than the largest frame max_output_bytes allows."""
    key = s3_key(url_or_key, bucket) if "://" in url_or_key else url_or_key
    limit = frame.max_b64_size(max_output_bytes) + 4096  # the frame's header and END lines
    body: bytes = aws_client("s3", region, profile).get_object(Bucket=bucket, Key=key)["Body"].read(limit + 1)
    if len(body) > limit:
        raise frame.OutputTooLarge(
            f"s3://{bucket}/{key} is over the limit of {max_output_bytes} bytes (--max-output-mb)"
        )
    return body.decode("utf-8", "replace")


_Page = Callable[[list[dict[str, Any]]], None]


def _describe(ssm: BaseClient, filters: list[dict[str, Any]], on_page: _Page | None = None) -> list[dict[str, Any]]:
    """Every managed instance the filters match, 50 to a page (the API's most); `on_page` sees
    each page as it comes (a fan-out can send to its instances while the listing goes on)."""
    infos: list[dict[str, Any]] = []
    for page in ssm.get_paginator("describe_instance_information").paginate(Filters=filters, MaxResults=50):
        if on_page is not None:
            on_page(page["InstanceInformationList"])
        infos += page["InstanceInformationList"]
    return infos


def _describe_ids(ssm: BaseClient, ids: list[str], on_page: _Page | None = None) -> list[dict[str, Any]]:
    """The managed instances among `ids`, 50 to a call (the InstanceIds filter): a shard's share of
    a 100,000-instance fleet costs its own ids' calls, never a listing of the whole fleet."""
    infos: list[dict[str, Any]] = []
    for start in range(0, len(ids), 50):
        page = _describe_chunk(ssm, ids[start : start + 50])
        if on_page is not None:
            on_page(page)
        infos += page
    return infos


def _describe_chunk(ssm: BaseClient, ids: list[str]) -> list[dict[str, Any]]:
    try:
        return _describe(ssm, [{"Key": "InstanceIds", "Values": ids}])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidInstanceId":
            raise
        # One unknown id can fail the whole request; halves name it in a few calls.
        if len(ids) == 1:
            return []
        half = len(ids) // 2
        return _describe_chunk(ssm, ids[:half]) + _describe_chunk(ssm, ids[half:])


def parse_tag(target: str) -> tuple[str, str] | None:
    """An --ssm-targets item "tag:Key=Value" as (Key, Value); None for anything else."""
    key, sep, value = target.strip().removeprefix("tag:").partition("=")
    return (key, value) if target.strip().startswith("tag:") and key and sep else None


class Unaudited(Enum):
    """Why a target is not audited as asked: the first two refuse the run (a usage error), the
    last two are that instance's ERROR in every output (README "AWS Systems Manager")."""

    NOT_A_TARGET = "not a target"  # neither an instance id nor tag:Key=Value
    EMPTY_TAG = "empty tag"  # no managed instance has the tag
    OFFLINE = "offline"  # managed, PingStatus not Online
    NOT_MANAGED = "not managed"  # no managed instance with this id in the account and region

    @property
    def refuses_run(self) -> bool:
        return self in (Unaudited.NOT_A_TARGET, Unaudited.EMPTY_TAG)


class TargetProblem(NamedTuple):
    """One target not audited as asked; str() is the line every output shows."""

    target: str  # the --ssm-targets item, or the instance id
    why: Unaudited
    detail: str

    def __str__(self) -> str:
        return f"{self.target}: {self.detail}"


class Discovery(NamedTuple):
    online: list[str]  # Online managed instance ids
    problems: list[TargetProblem]  # one per target that is not audited
    tags: dict[tuple[str, str], list[str]]  # (key, value) of each tag target -> its Online instances
    listed: dict[tuple[str, str], list[str]] = {}  # each tag target -> every instance listed for it


def discover_targets(
    targets: str,
    region: str | None = None,
    profile: str | None = None,
    on_page: _Page | None = None,
) -> Discovery:
    """Resolve "i-...,tag:Role=docker,..." to the Online managed instances and the problems;
    `on_page` sees each page of a tag's listing as it comes."""
    ssm = aws_client("ssm", region, profile)
    pings: dict[str, str] = {}
    problems: list[TargetProblem] = []
    ids: list[str] = []
    tags: dict[tuple[str, str], list[str]] = {}
    listed: dict[tuple[str, str], list[str]] = {}
    for item in filter(None, (t.strip() for t in targets.split(","))):
        if item.startswith("tag:"):
            tag = parse_tag(item)
            if tag is None:
                problems.append(TargetProblem(item, Unaudited.NOT_A_TARGET, "expected tag:Key=Value"))
                continue
            key, value = tag
            infos = _describe(ssm, [{"Key": f"tag:{key}", "Values": [value]}], on_page)
            listed[(key, value)] = [i["InstanceId"] for i in infos]
            if not infos:
                problems.append(TargetProblem(item, Unaudited.EMPTY_TAG, "no managed instance has this tag"))
            pings.update((i["InstanceId"], i.get("PingStatus", "")) for i in infos)
            tags[(key, value)] = [i["InstanceId"] for i in infos if i.get("PingStatus") == "Online"]
        elif INSTANCE_ID.fullmatch(item):
            ids.append(item)
        else:
            problems.append(
                TargetProblem(item, Unaudited.NOT_A_TARGET, "neither an instance id (i-...) nor tag:Key=Value")
            )
    _ping_ids(ssm, ids, pings, problems)
    return _discovery(pings, problems, tags, listed)


def _discovery(
    pings: dict[str, str],
    problems: list[TargetProblem],
    tags: dict[tuple[str, str], list[str]],
    listed: dict[Any, list[str]],
) -> Discovery:
    offline = [
        TargetProblem(i, Unaudited.OFFLINE, f"offline (PingStatus={p})") for i, p in pings.items() if p != "Online"
    ]
    return Discovery([i for i, p in pings.items() if p == "Online"], problems + offline, tags, listed)


def _ping_ids(
    ssm: BaseClient,
    ids: list[str],
    pings: dict[str, str],
    problems: list[TargetProblem],
    on_page: _Page | None = None,
) -> None:
    """Each of `ids`' PingStatus into pings; an id no call names is a problem (not managed here)."""
    found = {i["InstanceId"]: i.get("PingStatus", "") for i in _describe_ids(ssm, ids, on_page)} if ids else {}
    for instance_id in ids:
        if instance_id in found:
            pings[instance_id] = found[instance_id]
        else:
            problems.append(
                TargetProblem(instance_id, Unaudited.NOT_MANAGED, "not a managed instance in this account and region")
            )


def describe_instances(
    ids: list[str], region: str | None = None, profile: str | None = None, on_page: _Page | None = None
) -> Discovery:
    """The instances an --ssm-instances-file names (plugin/instance_list.py), as `discover_targets`
    finds them but by id only, 50 to a call: no tag is listed; `on_page` sees each call's answer."""
    pings: dict[str, str] = {}
    problems: list[TargetProblem] = []
    _ping_ids(aws_client("ssm", region, profile), ids, pings, problems, on_page)
    return _discovery(pings, problems, {}, {})


def instances_tagged(
    tag_sets: list[tuple[tuple[str, str], ...]], region: str | None = None, profile: str | None = None
) -> dict[tuple[tuple[str, str], ...], list[str]]:
    """Each tag set (a waiver's scope.ssm_tags) -> the managed instances that carry every pair: one
    DescribeInstanceInformation listing per set, its tag:KEY filters ANDed by the API."""
    ssm = aws_client("ssm", region, profile)
    return {
        tags: [i["InstanceId"] for i in _describe(ssm, [{"Key": f"tag:{k}", "Values": [v]} for k, v in tags])]
        for tags in tag_sets
    }
