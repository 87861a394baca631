"""Local emulator of the AWS SSM Run Command API that really runs the commands.

moto's SSM runs nothing and always reports Success (docs/kernel-behaviour.md), so it cannot test exact results.
This serves AWS JSON 1.1 (`X-Amz-Target: AmazonSSM.<Operation>`) on 127.0.0.1; boto3 reaches it
with AWS_ENDPOINT_URL_SSM (see `environ`) and dummy credentials. Each instance id maps to a
testinfra host spec (local://, paramiko://...) opened with cisaudit.host.transport.open_host (which
verifies SSH host keys), and AWS-RunShellScript's `commands`, joined by newlines, run there
with `sh -c`.

What it models, and where each fact comes from:
- SendCommand (InstanceIds, or Targets by InstanceIds / tag:Key / tag-key), GetCommandInvocation,
  ListCommandInvocations (Details, paging), DescribeInstanceInformation (Filters InstanceIds,
  PingStatus, tag:Key, tag-key; paging), CancelCommand: shapes from botocore's SSM service model.
  A SendCommand by tag reaches the instances tagged when it is sent. A DescribeInstanceInformation
  listing is matched at its first page and its NextToken pages through that match (the API's
  tokens are opaque; what a listing shows of a fleet that changes while it pages is not
  documented): a listing of 100,000 instances costs one pass over them, not one per page.
- Errors as HTTP 400 with {"__type": code, "message": ...}, which botocore's JSON parser turns
  into ClientError / modeled exceptions (InvocationDoesNotExist, InvalidInstanceId, ...).
- Status Pending -> (Delayed) -> InProgress -> Success | Failed | TimedOut | Cancelled, with
  StatusDetails DeliveryTimedOut, ExecutionTimedOut, Undeliverable: GetCommandInvocation's
  StatusDetails in the API reference and "Understanding command statuses" in the SSM user guide.
  The Status paired with Undeliverable is not documented; Failed is a guess.
- A command not picked up within TimeoutSeconds ends DeliveryTimedOut (user guide, as above).
- Eventual consistency: "The Run Command API follows an eventual consistency model" (API
  reference, GetCommandInvocation); docs/kernel-behaviour.md says InvocationDoesNotExist right after SendCommand
  is normal. Fault `visibility_delay`.
- StandardOutputContent is the first 24,000 characters of stdout and StandardErrorContent the
  first 8,000 of stderr (API reference, GetCommandInvocation; docs/kernel-behaviour.md); CommandPlugins Output
  is at most 2,500 (API reference, CommandPlugin).
- Exit code 194 makes the Linux agent reboot the instance ("Handling reboots when running
  commands", SSM user guide; docs/kernel-behaviour.md). Nothing reboots here: it is reported as Failed with an
  explanation in stderr and counted in stats["reboots"].
- ResponseCode 137 for a command stopped at its execution timeout: the agent's
  CommandStoppedPreemptivelyExitCode (amazon-ssm-agent, agent/appconfig/constants_unix.go).
- ThrottlingException, which botocore's standard and adaptive retry modes retry.
- MaxConcurrency (a count or a percentage of the targets) bounds the invocations in progress at
  once; the others wait their turn, Pending, and one whose turn comes after TimeoutSeconds ends
  DeliveryTimedOut. MaxErrors (default 0): once more invocations than that have ended in an
  error, the ones not yet started are not sent: "the system stops sending the command to
  additional targets" (API reference, SendCommand); that they then show Cancelled is a guess.
- OutputS3BucketName / OutputS3KeyPrefix: the whole stdout goes to a real S3-compatible store
  (`s3_endpoint`, e.g. moto's server mode) under `<prefix>/<CommandId>/<InstanceId>/
  awsrunShellScript/0.awsrunShellScript/stdout`, uploaded before the status turns terminal, and
  StandardOutputUrl names it (path-style); the API fields stay cut as above.
- `runner`: a callable that answers for the host instead of running the script there (scale
  runs answer from recorded real outputs; whoever passes one says so).
Authentication is a per-run secret instead of SigV4: the endpoint URL's path is a random token
(`endpoint_url`, `environ`) and any other request is refused with UnrecognizedClientException and
runs nothing; the emulator runs commands as its own user (root), so another local user who can
reach 127.0.0.1 must not be able to send it commands. Signatures are ignored.
- PutComplianceItems / ListComplianceItems (`ComplianceStore`): COMPLETE replaces a type's items,
  an equal ItemContentHash is ignored, the quotas and refusals as below; `deny_compliance` makes
  an instance's upload AccessDenied.
- `documents`: registered Command documents (schema 2.2, one aws:runShellScript step) whose
  script runs as AWS-RunShellScript's does, parameters checked by allowedValues / allowedPattern
  and put in for `{{ name }}`.
- aws:downloadContent steps (sourceType S3) in a registered document: stands in for the agent
  fetching an S3 object before the shell step runs. The object named by sourceInfo's https URL
  (path-style: /bucket/key) is read from the emulator's S3 store (`s3_endpoint`) and written on
  the host as <destinationPath>/<the URL's last name> (assumed: the agent keeps the object's
  name inside a destination directory), in base64 chunks through the host's transport. A
  download that fails ends the invocation Failed without running the shell step.
Not modelled: CloudWatch output, other documents and steps, and stopping a command at its
execution timeout (it runs on until the transport's command_timeout, and its result is dropped).
"""

import argparse
import collections
import contextlib
import dataclasses
import datetime
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cisaudit.host.transport import ConnectOptions, open_host

STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
PLUGIN_OUTPUT_LIMIT = 2_500
REBOOT_EXIT_CODE = 194
STOPPED_EXIT_CODE = 137
PLUGIN = "aws:runShellScript"
DOWNLOAD_PLUGIN = "aws:downloadContent"
DOWNLOAD_CHUNK = 60_000  # base64 characters per command: under Linux's 128 KiB for one argument


@dataclasses.dataclass
class Faults:
    """Misbehaviour to inject; all off by default."""

    visibility_delay: float = 0.0  # s after SendCommand during which invocations are invisible
    throttle_every: int = 0  # every Nth API call is throttled
    throttle_rate: float = 0.0  # calls per second above which calls are throttled
    pending_time: float = 0.0  # s in Pending before delivery
    delayed_time: float = 0.0  # s in Delayed after Pending
    in_progress_time: float = 0.0  # extra s in InProgress after the command ends
    force_failed: bool = False  # report Failed without running anything
    execution_timeout: float | None = None  # caps the document's executionTimeout (s)
    latency: float = 0.0  # s added to every API call
    undeliverable: frozenset[str] = frozenset()  # instance ids whose commands are Undeliverable
    fail: frozenset[str] = frozenset()  # instance ids whose commands end Failed without running
    deny_compliance: frozenset[str] = frozenset()  # instance ids whose PutComplianceItems is AccessDenied


class ApiError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass
class _Instance:
    spec: str | None
    ping: str = "Online"
    tags: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Invocation:
    command_id: str
    instance_id: str
    sent: float  # time.monotonic()
    requested: float  # epoch seconds
    status: str = "Pending"
    details: str = "Pending"
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    started: float | None = None
    ended: float | None = None
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    stdout_url: str = ""


@dataclasses.dataclass
class _Rollout:
    """How one command is sent out: its document inputs and the service's rate controls."""

    script: str
    delivery: float
    execution: float
    concurrency: int
    max_errors: int
    bucket: str = ""
    prefix: str = ""
    errors: int = 0
    downloads: tuple[tuple[str, str], ...] = ()  # (S3 URL, destination dir) fetched before the script


def _limit(text: str | None, targets: int, default: int) -> int:
    """A MaxConcurrency / MaxErrors value: a count, or a percentage of the targets."""
    if not text:
        return default
    if text.endswith("%"):
        return max(1, targets * int(text[:-1]) // 100) if int(text[:-1]) else 0
    return int(text)


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec="milliseconds")


class SsmEmulator:
    """`with SsmEmulator({"i-0123456789abcdef0": "local://"}) as emu: emu.endpoint_url`"""

    def __init__(
        self,
        mapping: Mapping[str, str],
        *,
        tags: Mapping[str, Mapping[str, str]] | None = None,
        offline: Iterable[str] = (),
        faults: Faults | None = None,
        port: int = 0,
        connect_options: ConnectOptions | None = None,
        s3_endpoint: str | None = None,
        runner: Callable[[str, str], tuple[int, str, str]] | None = None,
        documents: Mapping[str, dict[str, Any]] | None = None,
    ):
        self.instances = {i: _Instance(spec) for i, spec in mapping.items()}
        for instance_id in offline:
            self.instances.setdefault(instance_id, _Instance(None)).ping = "ConnectionLost"
        self.faults = faults or Faults()
        for instance_id in self.faults.undeliverable:
            self.instances.setdefault(instance_id, _Instance(None))
        for instance_id, instance_tags in (tags or {}).items():
            self.instances.setdefault(instance_id, _Instance(None)).tags.update(instance_tags)
        # open_host verifies SSH host keys, unlike plain testinfra.get_host.
        self.connect_options = connect_options or ConnectOptions()
        self.s3_endpoint = s3_endpoint
        self.runner = runner
        self.documents = dict(documents or {})  # name -> a Command document (schema 2.2) registered
        self._s3: Any = None
        self.commands: dict[str, dict[str, _Invocation]] = {}
        self._listings: dict[str, list[str]] = {}  # DescribeInstanceInformation listing -> its instances
        self.calls: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.throttled: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()  # API calls per operation, throttled too
        self.reboots = 0
        self.compliance = ComplianceStore(self)
        self._lock = threading.Lock()
        self._hosts: dict[str, Any] = {}
        self._hosts_lock = threading.Lock()  # connecting can be slow: do not block the API
        self._served = 0
        self._recent: collections.deque[float] = collections.deque()
        self.token = secrets.token_urlsafe(24)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.token}"

    @property
    def environ(self) -> dict[str, str]:
        """Environment that points boto3 here with dummy credentials."""
        return {
            "AWS_ENDPOINT_URL_SSM": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "emulator",
            "AWS_SECRET_ACCESS_KEY": "emulator",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def stats(self) -> dict[str, Any]:
        """Calls per operation per instance ("*" when not about one; one SendCommand to N
        instances counts N), requests per operation, throttled calls, reboots."""
        with self._lock:
            return {
                "calls": {op: dict(counts) for op, counts in self.calls.items()},
                "requests": dict(self.requests),
                "throttled": dict(self.throttled),
                "reboots": self.reboots,
                "compliance": dict(self.compliance.counts),
            }

    def __enter__(self) -> "SsmEmulator":
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- request handling -------------------------------------------------------------

    def handle(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        time.sleep(self.faults.latency)
        op = target.removeprefix("AmazonSSM.")
        handler: Callable[[dict[str, Any]], dict[str, Any]] | None = {
            "SendCommand": self._send_command,
            "GetCommandInvocation": self._get_command_invocation,
            "ListCommandInvocations": self._list_command_invocations,
            "DescribeInstanceInformation": self._describe_instance_information,
            "CancelCommand": self._cancel_command,
            "PutComplianceItems": self.compliance.put,
            "ListComplianceItems": self.compliance.list,
        }.get(op)
        if handler is None:
            return 400, {"__type": "UnknownOperationException", "message": f"unknown {target!r}"}
        with self._lock:
            self.requests[op] += 1
        if self._throttle(op):
            return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        try:
            return 200, handler(json.loads(body or b"{}"))
        except ApiError as exc:
            return 400, {"__type": exc.code, "message": str(exc)}

    def _throttle(self, op: str) -> bool:
        f = self.faults
        now = time.monotonic()
        with self._lock:
            self._served += 1
            while self._recent and now - self._recent[0] > 1.0:
                self._recent.popleft()
            if (f.throttle_every and self._served % f.throttle_every == 0) or (
                f.throttle_rate and len(self._recent) >= f.throttle_rate
            ):
                self.throttled[op] += 1
                return True
            self._recent.append(now)
            return False

    def _count(self, op: str, instance_ids: Iterable[str] = ("*",)) -> None:
        with self._lock:
            for instance_id in instance_ids:
                self.calls[op][instance_id] += 1

    def _targets(self, req: dict[str, Any]) -> list[str]:
        if req.get("InstanceIds"):
            ids = list(dict.fromkeys(req["InstanceIds"]))
            unknown = [i for i in ids if i not in self.instances]
            if unknown:
                raise ApiError("InvalidInstanceId", f"Instances {unknown} not in a valid state")
            return ids
        if not req.get("Targets"):
            raise ApiError("InvalidParameters", "InstanceIds or Targets is required")
        return [i for i in self.instances if all(self._matches(i, t) for t in req["Targets"])]

    def _matches(self, instance_id: str, flt: dict[str, Any]) -> bool:
        key, values = flt["Key"], flt.get("Values", [])
        tags = self.instances[instance_id].tags
        if key == "InstanceIds":
            return instance_id in values
        if key == "PingStatus":
            return self.instances[instance_id].ping in values
        if key.startswith("tag:"):
            return tags.get(key[4:]) in values
        if key == "tag-key":
            return any(k in tags for k in values)
        raise ApiError("InvalidFilterKey", f"unsupported filter key {key!r}")

    def _send_command(self, req: dict[str, Any]) -> dict[str, Any]:
        params = req.get("Parameters", {})
        if req.get("DocumentName") in self.documents:
            script, params = _document_script(self.documents[req["DocumentName"]], params)
            downloads = _document_downloads(self.documents[req["DocumentName"]], params)
        elif req.get("DocumentName") != "AWS-RunShellScript":
            raise ApiError("InvalidDocument", "only AWS-RunShellScript and the registered documents are emulated")
        elif not params.get("commands"):
            raise ApiError("InvalidParameters", "commands is required")
        else:
            script = "\n".join(params["commands"])
        if req.get("DocumentName") not in self.documents:
            downloads = ()
        ids = self._targets(req)
        execution_timeout = float(params.get("executionTimeout", ["3600"])[0])
        if self.faults.execution_timeout is not None:
            execution_timeout = min(execution_timeout, self.faults.execution_timeout)
        delivery_timeout = float(req.get("TimeoutSeconds", 3600))
        bucket = req.get("OutputS3BucketName") or ""
        if bucket and not self.s3_endpoint:
            raise ApiError("InvalidOutputLocation", "this emulator was started without an S3 store")
        rollout = _Rollout(
            script,
            delivery_timeout,
            execution_timeout,
            concurrency=max(1, _limit(req.get("MaxConcurrency"), len(ids), 50)),
            max_errors=_limit(req.get("MaxErrors"), len(ids), 0),
            bucket=bucket,
            prefix=req.get("OutputS3KeyPrefix") or "",
            downloads=downloads,
        )
        command_id = str(uuid.uuid4())
        now, wall = time.monotonic(), time.time()
        invocations = {i: _Invocation(command_id, i, now, wall) for i in ids}
        with self._lock:
            self.commands[command_id] = invocations
        self._count("SendCommand", ids or ["*"])
        threading.Thread(target=self._roll_out, args=(list(invocations.values()), rollout), daemon=True).start()
        return {
            "Command": {
                "CommandId": command_id,
                "DocumentName": "AWS-RunShellScript",
                "Parameters": params,
                "InstanceIds": req.get("InstanceIds", []),
                "Targets": req.get("Targets", []),
                "RequestedDateTime": wall,
                "Status": "Pending",
                "StatusDetails": "Pending",
                "TimeoutSeconds": int(delivery_timeout),
                "TargetCount": len(ids),
                "CompletedCount": 0,
                "ErrorCount": 0,
            }
        }

    def _visible(self, command_id: str, instance_id: str | None = None) -> list[_Invocation]:
        now = time.monotonic()
        with self._lock:
            invocations = list(self.commands.get(command_id, {}).values())
        return [
            inv
            for inv in invocations
            if now - inv.sent >= self.faults.visibility_delay and instance_id in (None, inv.instance_id)
        ]

    def _get_command_invocation(self, req: dict[str, Any]) -> dict[str, Any]:
        self._count("GetCommandInvocation", [req["InstanceId"]])
        if req.get("PluginName") not in (None, PLUGIN):
            raise ApiError("InvalidPluginName", f"no plugin {req['PluginName']!r}")
        found = self._visible(req["CommandId"], req["InstanceId"])
        if not found:
            raise ApiError("InvocationDoesNotExist", "no such invocation")
        inv = found[0]
        end = inv.ended if inv.ended is not None else time.time()
        return {
            "CommandId": inv.command_id,
            "InstanceId": inv.instance_id,
            "Comment": "",
            "DocumentName": "AWS-RunShellScript",
            "DocumentVersion": "1",
            "PluginName": PLUGIN,
            "ResponseCode": inv.response_code,
            "ExecutionStartDateTime": _iso(inv.started),
            "ExecutionElapsedTime": f"PT{end - inv.started:.3f}S" if inv.started else "",
            "ExecutionEndDateTime": _iso(inv.ended),
            "Status": inv.status,
            "StatusDetails": inv.details,
            "StandardOutputContent": inv.stdout,
            "StandardOutputUrl": inv.stdout_url,
            "StandardErrorContent": inv.stderr,
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
        }

    def _list_command_invocations(self, req: dict[str, Any]) -> dict[str, Any]:
        instance_id = req.get("InstanceId")
        self._count("ListCommandInvocations", [instance_id or "*"])
        if "CommandId" in req:
            command_ids = [req["CommandId"]]
        else:
            with self._lock:
                command_ids = list(self.commands)
        found = [inv for c in command_ids for inv in self._visible(c, instance_id)]
        page, token = _page(found, req, default=50)
        result = []
        for inv in page:
            item: dict[str, Any] = {
                "CommandId": inv.command_id,
                "InstanceId": inv.instance_id,
                "DocumentName": "AWS-RunShellScript",
                "RequestedDateTime": inv.requested,
                "Status": inv.status,
                "StatusDetails": inv.details,
                "StandardOutputUrl": inv.stdout_url,
                "StandardErrorUrl": "",
            }
            if req.get("Details"):
                output = inv.stdout + (f"\n----------ERROR-------\n{inv.stderr}" if inv.stderr else "")
                item["CommandPlugins"] = [
                    {
                        "Name": PLUGIN,
                        "Status": inv.status,
                        "StatusDetails": inv.details,
                        "ResponseCode": inv.response_code,
                        "Output": output[:PLUGIN_OUTPUT_LIMIT],
                        "StandardOutputUrl": inv.stdout_url,
                    }
                ]
            result.append(item)
        return {"CommandInvocations": result} | ({"NextToken": token} if token else {})

    def _describe_instance_information(self, req: dict[str, Any]) -> dict[str, Any]:
        self._count("DescribeInstanceInformation")
        filters = list(req.get("Filters", []))
        # The deprecated filter list uses lower-case keys.
        filters += [{"Key": f["key"], "Values": f["valueSet"]} for f in req.get("InstanceInformationFilterList", [])]
        ids = self._listing(req.get("NextToken"), filters)
        listing, _, offset = (req.get("NextToken") or "").partition(":")
        page, token = _page(ids, req | {"NextToken": offset}, default=10)  # small, so clients must page
        if token:
            token = f"{listing or self._listed(ids)}:{token}"
        infos = [
            {
                "InstanceId": i,
                "PingStatus": self.instances[i].ping,
                "PlatformType": "Linux",
                "ResourceType": "EC2Instance",
                "AgentVersion": "3.3.0.0",
            }
            for i in page
        ]
        return {"InstanceInformationList": infos} | ({"NextToken": token} if token else {})

    def _listing(self, token: str | None, filters: list[dict[str, Any]]) -> list[str]:
        """The instances a listing pages through: matched once, at its first page (a token names
        that listing and an offset), so that paging 100,000 instances costs the service (this
        process, on the benchmark's cores) one pass over them, not one per page."""
        if token:
            listing, _, offset = token.partition(":")
            with self._lock:
                ids = self._listings.get(listing)
            if ids is None or not offset.isdigit():
                raise ApiError("InvalidNextToken", "the token is not valid")
            return ids
        given = next((f.get("Values", []) for f in filters if f["Key"] == "InstanceIds"), None)
        # InstanceIds: only those are looked at (a shard asks about 50 of 100,000 per call)
        candidates = self.instances if given is None else [i for i in dict.fromkeys(given) if i in self.instances]
        return [i for i in candidates if all(self._matches(i, f) for f in filters)]

    def _listed(self, ids: list[str]) -> str:
        listing = secrets.token_hex(8)
        with self._lock:
            self._listings[listing] = ids
        return listing

    def _cancel_command(self, req: dict[str, Any]) -> dict[str, Any]:
        ids = req.get("InstanceIds") or None
        self._count("CancelCommand", ids or ["*"])
        with self._lock:
            invocations = self.commands.get(req["CommandId"])
        if invocations is None:
            raise ApiError("InvalidCommandId", "no such command")
        for inv in invocations.values():
            if ids is None or inv.instance_id in ids:
                inv.cancel.set()
        return {}

    # --- the "agent" --------------------------------------------------------------------

    def _set(self, inv: _Invocation, status: str, details: str, **fields: Any) -> None:
        with self._lock:
            inv.status, inv.details = status, details
            for name, value in fields.items():
                setattr(inv, name, value)

    def _finish(self, inv: _Invocation, status: str, details: str, rc: int, out: str, err: str) -> None:
        self._set(
            inv,
            status,
            details,
            response_code=rc,
            ended=time.time(),
            stdout=out[:STDOUT_LIMIT],
            stderr=err[:STDERR_LIMIT],
        )

    def _host(self, instance_id: str) -> Any:
        with self._hosts_lock:
            if instance_id not in self._hosts:
                spec = self.instances[instance_id].spec
                if spec is None:  # known only by its tags or ping: nothing to run on
                    raise RuntimeError(f"{instance_id} is mapped to no host")
                self._hosts[instance_id] = open_host(spec, self.connect_options)
            return self._hosts[instance_id]

    def _roll_out(self, invocations: list[_Invocation], rollout: _Rollout) -> None:
        """Start invocations in order, at most `concurrency` at once, until MaxErrors is passed."""
        slots = threading.Semaphore(rollout.concurrency)

        def one(inv: _Invocation) -> None:
            try:
                self._execute(inv, rollout)
            finally:
                with self._lock:
                    rollout.errors += inv.status != "Success"
                slots.release()

        for inv in invocations:
            slots.acquire()
            with self._lock:
                stopped = rollout.errors > rollout.max_errors
            if stopped or inv.cancel.is_set():
                self._finish(inv, "Cancelled", "Cancelled", -1, "", "")
                slots.release()
                continue
            if time.monotonic() - inv.sent > rollout.delivery:  # its turn came too late
                self._finish(inv, "TimedOut", "DeliveryTimedOut", -1, "", "")
                slots.release()
                continue
            threading.Thread(target=one, args=(inv,), daemon=True).start()

    def _store(self, inv: _Invocation, rollout: _Rollout, stdout: str) -> None:
        """Upload the whole stdout where the agent would, before the status says it ended."""
        if not rollout.bucket or not stdout:
            return
        prefix = f"{rollout.prefix}/" if rollout.prefix else ""
        key = f"{prefix}{inv.command_id}/{inv.instance_id}/awsrunShellScript/0.awsrunShellScript/stdout"
        self._s3_client().put_object(Bucket=rollout.bucket, Key=key, Body=stdout.encode())
        inv.stdout_url = f"{self.s3_endpoint}/{rollout.bucket}/{key}"

    def _s3_client(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client(
                "s3",
                endpoint_url=self.s3_endpoint,
                region_name="us-east-1",
                aws_access_key_id="emulator",
                aws_secret_access_key="emulator",
            )
        return self._s3

    def _download(self, instance_id: str, url: str, directory: str) -> None:
        """aws:downloadContent (S3): the object at `url` (path-style) into `directory` on the host."""
        import base64
        import shlex
        import urllib.parse

        bucket, _, key = urllib.parse.urlsplit(url).path.lstrip("/").partition("/")
        if not self.s3_endpoint:
            raise RuntimeError("aws:downloadContent: this emulator was started without an S3 store")
        data = base64.b64encode(self._s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()).decode()
        final = shlex.quote(f"{directory}/{key.rsplit('/', 1)[-1]}")
        host, part = self._host(instance_id), shlex.quote(f"{directory}/.cisaudit-download")
        host.run_expect([0], "sh -c %s", f"mkdir -p {shlex.quote(directory)} && : >{part}")
        for start in range(0, len(data), DOWNLOAD_CHUNK):
            chunk = data[start : start + DOWNLOAD_CHUNK]
            host.run_expect([0], "sh -c %s", f"printf %s {chunk} | base64 -d >>{part}")
        host.run_expect([0], "sh -c %s", f"mv -f {part} {final}")

    def _execute(self, inv: _Invocation, rollout: _Rollout) -> None:
        f = self.faults
        delivery, execution = rollout.delivery, rollout.execution
        if self.instances[inv.instance_id].ping != "Online":
            # An unreachable agent never picks the command up.
            self._set(inv, "Delayed", "Delayed")
            if inv.cancel.wait(delivery):
                self._finish(inv, "Cancelled", "Cancelled", -1, "", "")
            else:
                self._finish(inv, "TimedOut", "DeliveryTimedOut", -1, "", "")
            return
        for seconds, status in ((f.pending_time, "Pending"), (f.delayed_time, "Delayed")):
            if seconds:
                self._set(inv, status, status)
            if inv.cancel.wait(seconds):
                self._finish(inv, "Cancelled", "Cancelled", -1, "", "")
                return
        if inv.instance_id in f.undeliverable:
            self._finish(inv, "Failed", "Undeliverable", -1, "", "")
            return
        self._set(inv, "InProgress", "InProgress", started=time.time())
        if f.force_failed or inv.instance_id in f.fail:
            self._finish(inv, "Failed", "Failed", 1, "", "emulator: forced failure\n")
            return
        outcome: dict[str, Any] = {}
        worker = threading.Thread(
            target=self._run, args=(inv.instance_id, rollout.script, outcome, rollout.downloads), daemon=True
        )
        worker.start()
        deadline = time.monotonic() + execution
        while worker.is_alive() and time.monotonic() < deadline and not inv.cancel.is_set():
            worker.join(0.02)
        if inv.cancel.is_set():
            self._finish(inv, "Cancelled", "Cancelled", STOPPED_EXIT_CODE, "", "")
        elif worker.is_alive():
            self._finish(inv, "TimedOut", "ExecutionTimedOut", STOPPED_EXIT_CODE, "", "")
        elif "error" in outcome:
            self._finish(inv, "Failed", "Failed", 1, "", f"emulator: {outcome['error']}\n")
        else:
            time.sleep(f.in_progress_time)
            rc, out, err = outcome["rc"], outcome["stdout"], outcome["stderr"]
            if rc == REBOOT_EXIT_CODE:
                with self._lock:
                    self.reboots += 1
                err += "\nemulator: exit code 194 would make the SSM agent reboot the instance\n"
                self._finish(inv, "Failed", "Failed", rc, out, err)
            else:
                status = "Success" if rc == 0 else "Failed"
                try:
                    self._store(inv, rollout, out)
                except Exception as exc:  # the agent reports a failed upload as a failed plugin
                    status, err = "Failed", f"{err}\nemulator: S3 upload failed: {exc!r}\n"
                self._finish(inv, status, status, rc, out, err)

    def _run(
        self, instance_id: str, script: str, outcome: dict[str, Any], downloads: tuple[tuple[str, str], ...] = ()
    ) -> None:
        try:
            for url, directory in downloads:  # the document's aws:downloadContent steps, first
                self._download(instance_id, url, directory)
            if self.runner is not None:
                outcome.update(zip(("rc", "stdout", "stderr"), self.runner(instance_id, script), strict=True))
                return
            result = self._host(instance_id).run("sh -c %s", script)
        except Exception as exc:  # whatever breaks the connection, the agent reports Failed
            outcome["error"] = f"cannot run on {self.instances[instance_id].spec}: {exc!r}"
            return
        # The agent hands stdout to the API as text; invalid UTF-8 becomes U+FFFD.
        outcome.update(
            rc=result.rc,
            stdout=result.stdout_bytes.decode("utf-8", "replace"),
            stderr=result.stderr_bytes.decode("utf-8", "replace"),
        )


def _document_script(document: dict[str, Any], given: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
    """A registered Command document's one aws:runShellScript step with its parameters put in:
    each given value checked against allowedValues / allowedPattern, the rest defaulted, then
    every `{{ name }}` replaced (SSM's parameter syntax; other steps or actions are not emulated)."""
    if document.get("schemaVersion") != "2.2":
        raise ApiError("InvalidDocument", "only schemaVersion 2.2 documents are emulated")
    declared = document.get("parameters", {})
    unknown = set(given) - set(declared)
    if unknown:
        raise ApiError("InvalidParameters", f"document has no parameters {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        value = given[name][0] if name in given else spec.get("default")
        if value is None:
            raise ApiError("InvalidParameters", f"parameter {name} is required")
        if "allowedValues" in spec and value not in spec["allowedValues"]:
            raise ApiError("InvalidParameters", f"{name}={value!r} is not one of {spec['allowedValues']}")
        if "allowedPattern" in spec and not re.search(spec["allowedPattern"], value):
            raise ApiError("InvalidParameters", f"{name}={value!r} does not match {spec['allowedPattern']}")
        values[name] = value
    (step,) = [s for s in document["mainSteps"] if s["action"] != DOWNLOAD_PLUGIN]
    if step["action"] != "aws:runShellScript":
        raise ApiError("InvalidDocument", f"step action {step['action']!r} is not emulated")
    script = "\n".join(step["inputs"]["runCommand"])
    script = re.sub(r"\{\{ *(\w+) *\}\}", lambda m: values[m.group(1)], script)
    timeout = step["inputs"].get("timeoutSeconds", "3600")
    return script, {name: [value] for name, value in values.items()} | {"executionTimeout": [str(timeout)]}


def _document_downloads(document: dict[str, Any], params: dict[str, list[str]]) -> tuple[tuple[str, str], ...]:
    """(URL, destinationPath) of each aws:downloadContent step (sourceType S3), parameters put in."""
    downloads = []
    for step in document["mainSteps"]:
        if step["action"] != DOWNLOAD_PLUGIN:
            continue
        inputs = json.loads(re.sub(r"\{\{ *(\w+) *\}\}", lambda m: params[m.group(1)][0], json.dumps(step["inputs"])))
        if inputs.get("sourceType") != "S3":
            raise ApiError(
                "InvalidDocument", f"aws:downloadContent sourceType {inputs.get('sourceType')!r} is not emulated"
            )
        downloads.append((json.loads(inputs["sourceInfo"])["path"], inputs["destinationPath"]))
    return tuple(downloads)


# SSM Compliance quotas. From botocore's ssm model: at most 10,000 items per call (validated by the
# client), Details keys <= 64 and values <= 4,096 characters. From the API reference's errors:
# ComplianceTypeCountLimitExceededException "You specified too many custom compliance types. You
# can specify a maximum of 10 different types." The byte limits of ItemSizeLimitExceededException
# and TotalSizeLimitExceededException are not documented: the two below are guesses.
CUSTOM_TYPES_MAX = 10
ITEM_BYTES_MAX = 64 << 10  # guess
TOTAL_BYTES_MAX = 4 << 20  # guess
_TYPE = re.compile(r"([A-Za-z0-9_\-]\w+|Custom:[a-zA-Z0-9_\-]\w+)")


class ComplianceStore:
    """PutComplianceItems / ListComplianceItems: per (instance, type) the items of the last
    COMPLETE upload; an upload whose ItemContentHash equals the stored one is ignored ("If the
    content hashes match, the request to put compliance information is ignored": API reference)."""

    def __init__(self, emulator: "SsmEmulator") -> None:
        self.emulator = emulator
        self.items: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.hashes: dict[tuple[str, str], str] = {}
        self.counts: collections.Counter[str] = collections.Counter()  # stored, unchanged, refused
        self._lock = threading.Lock()

    def put(self, req: dict[str, Any]) -> dict[str, Any]:
        instance, ctype = req["ResourceId"], req["ComplianceType"]
        self.emulator._count("PutComplianceItems", [instance])
        try:
            self._check(req)
        except ApiError:
            with self._lock:
                self.counts["refused"] += 1
            raise
        key = (instance, ctype)
        with self._lock:
            if req.get("ItemContentHash") and self.hashes.get(key) == req["ItemContentHash"]:
                self.counts["unchanged"] += 1
                return {}
            summary = req["ExecutionSummary"]
            self.items[key] = [
                {"ComplianceType": ctype, "ResourceType": req["ResourceType"], "ResourceId": instance}
                | item
                | {"ExecutionSummary": summary}
                for item in req["Items"]
            ]
            self.hashes[key] = req.get("ItemContentHash", "")
            self.counts["stored"] += 1
        return {}

    def _check(self, req: dict[str, Any]) -> None:
        instance, ctype = req["ResourceId"], req["ComplianceType"]
        if req["ResourceType"] != "ManagedInstance":
            raise ApiError("InvalidResourceType", "ManagedInstance is the only supported resource type")
        if instance not in self.emulator.instances:
            raise ApiError("InvalidResourceId", f"{instance} is not a managed instance")
        if instance in self.emulator.faults.deny_compliance:
            raise ApiError(
                "AccessDeniedException", f"not authorized to perform: ssm:PutComplianceItems on instance/{instance}"
            )
        if not _TYPE.fullmatch(ctype):
            raise ApiError("ValidationException", f"invalid ComplianceType {ctype!r}")
        if req.get("UploadType") == "PARTIAL" and ctype != "Association":
            raise ApiError("InvalidItemContentException", "PARTIAL is only valid for association compliance")
        with self._lock:
            custom = {t for _, t in self.items if t.startswith("Custom:")} | {ctype}
        if ctype.startswith("Custom:") and len(custom) > CUSTOM_TYPES_MAX:
            raise ApiError(
                "ComplianceTypeCountLimitExceededException",
                f"You specified too many custom compliance types. You can specify a maximum of {CUSTOM_TYPES_MAX}.",
            )
        sizes = [len(json.dumps(item)) for item in req["Items"]]
        if any(size > ITEM_BYTES_MAX for size in sizes):
            raise ApiError("ItemSizeLimitExceededException", "The inventory item size has exceeded the size limit.")
        if sum(sizes) > TOTAL_BYTES_MAX:
            raise ApiError(
                "TotalSizeLimitExceededException", "The size of inventory data has exceeded the total size limit."
            )

    def list(self, req: dict[str, Any]) -> dict[str, Any]:
        self.emulator._count("ListComplianceItems", req.get("ResourceIds") or ["*"])
        ids = req.get("ResourceIds")
        filters = {f["Key"]: f.get("Values", []) for f in req.get("Filters", [])}
        with self._lock:
            found = [
                item
                for (instance, ctype), items in self.items.items()
                if (not ids or instance in ids) and ctype in filters.get("ComplianceType", [ctype])
                for item in items
                if item["Status"] in filters.get("Status", [item["Status"]])
            ]
        page, token = _page(found, req, default=50)
        return {"ComplianceItems": page} | ({"NextToken": token} if token else {})


def _page(items: list[Any], req: dict[str, Any], default: int) -> tuple[list[Any], str | None]:
    start = int(req.get("NextToken") or 0)
    size = int(req.get("MaxResults") or default)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # botocore keeps connections alive

    def _reply(self, status: int, payload: Any, content_type: str) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self, path: str) -> bool:
        emulator: SsmEmulator = self.server.emulator  # type: ignore[attr-defined]
        if hmac.compare_digest(self.path.encode(), f"/{emulator.token}{path}".encode()):
            return True
        self._reply(
            400,
            {
                "__type": "UnrecognizedClientException",
                "message": "The security token included in the request is invalid.",
            },
            "application/x-amz-json-1.1",
        )
        return False

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self._authorized(""):
            return
        emulator: SsmEmulator = self.server.emulator  # type: ignore[attr-defined]
        status, payload = emulator.handle(self.headers.get("X-Amz-Target", ""), body)
        self._reply(status, payload, "application/x-amz-json-1.1")

    def do_GET(self) -> None:
        if self._authorized("/_stats"):
            self._reply(200, self.server.emulator.stats(), "application/json")  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


def _pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    pairs = [v.partition("=")[::2] for v in values]
    bad = [v for v, (key, rest) in zip(values, pairs, strict=True) if not key or not rest]
    if bad:
        raise SystemExit(f"--{what} expects ID=VALUE, got {bad}")
    return pairs


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--map", action="append", default=[], metavar="ID=SPEC", help="instance id to testinfra host spec")
    p.add_argument("--tag", action="append", default=[], metavar="ID=KEY=VALUE")
    p.add_argument("--offline", action="append", default=[], metavar="ID", help="PingStatus ConnectionLost")
    p.add_argument("--undeliverable", action="append", default=[], metavar="ID")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--known-hosts", help="extra known_hosts file for paramiko:// and ssh:// specs")
    p.add_argument("--accept-new-host-keys", action="store_true", help="throwaway test VMs only")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    p.add_argument("--visibility-delay", type=float, default=0.0)
    p.add_argument("--throttle-every", type=int, default=0)
    p.add_argument("--throttle-rate", type=float, default=0.0)
    p.add_argument("--pending-time", type=float, default=0.0)
    p.add_argument("--delayed-time", type=float, default=0.0)
    p.add_argument("--in-progress-time", type=float, default=0.0)
    p.add_argument("--force-failed", action="store_true")
    p.add_argument("--execution-timeout", type=float)
    a = p.parse_args(argv)
    tags: dict[str, dict[str, str]] = collections.defaultdict(dict)
    for instance_id, tag in _pairs(a.tag, "tag"):
        key, value = _pairs([tag], "tag")[0]
        tags[instance_id][key] = value
    faults = Faults(
        visibility_delay=a.visibility_delay,
        throttle_every=a.throttle_every,
        throttle_rate=a.throttle_rate,
        pending_time=a.pending_time,
        delayed_time=a.delayed_time,
        in_progress_time=a.in_progress_time,
        force_failed=a.force_failed,
        execution_timeout=a.execution_timeout,
        latency=a.latency,
        undeliverable=frozenset(a.undeliverable),
    )
    options = ConnectOptions(known_hosts=a.known_hosts, accept_new_host_keys=a.accept_new_host_keys)
    mapping = dict(_pairs(a.map, "map"))
    emulator = SsmEmulator(mapping, tags=tags, offline=a.offline, faults=faults, port=a.port, connect_options=options)
    with emulator:
        print(f"SSM emulator at {emulator.endpoint_url} (stats: {emulator.endpoint_url}/_stats)", flush=True)
        for name, value in emulator.environ.items():
            print(f"export {name}={value}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
