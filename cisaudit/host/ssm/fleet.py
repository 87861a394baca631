"""A fleet audit's probe over Run Command's own fan-out (the plan is pure code in `fanout.py`).

One SendCommand per batch; each instance's framed output (`frame.py`, whole, never cut) is read
from S3 as soon as its object appears, and decoded into a spool file per instance that the
host's session reads (`Spool`), so the runner holds no fleet's worth of output in memory.
Statuses come from ListCommandInvocations, paginated, once the S3 objects of a command's
instances are all there, or when no new one came for a while, or at the deadline. Every
instance ends with a result or a one-line error; nothing else becomes a verdict.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from cisaudit.host.ssm import fanout, frame
from cisaudit.host.ssm.backend import S3_PREFIX, SsmTransportError, aws_client, read_s3_stdout
from cisaudit.host.ssm.spool import Spool

_Read = tuple[str | None, frame.Header | None]  # (the problem, or None; the frame's header)
_GRACE = 5.0  # past our own timeouts, so the service can report its TimedOut first
_READERS = 16
_PAGE = 50  # ListCommandInvocations' MaxResults with Details
_END = "\0end"  # _Command.cursor once every page is finished
_LISTING_PAUSE = 3.0  # a listing of the command's S3 prefix is followed by 3x its duration without one


@dataclass(frozen=True)
class FleetOptions:
    bucket: str
    region: str | None = None
    profile: str | None = None
    concurrency: str = "50"
    delivery_timeout: float = 60
    execution_timeout: float = 300
    max_output_bytes: int = 32 << 20
    poll_interval: float = 1.0
    stall: float = 5.0  # s without a new S3 object before statuses are paged anyway (doubles)


@dataclass
class _Command:
    command_id: str
    pending: set[str]  # members without a final result or error
    deadline: float
    prefix: str
    reads: dict[str, Future[_Read]] = field(default_factory=dict)
    last_progress: float = field(default_factory=time.monotonic)
    stall: float = 5.0
    next_page: float = 0.0  # no paging before this (monotonic)
    cursor: str | None = None  # ListCommandInvocations token of the first page not finished (_advance)
    advanced: int = 0  # reads there were when _advance last stopped
    next_listing: float = 0.0  # no S3 listing before this (monotonic)
    backoff: float = 1.0  # wait after a paging that found S3 objects ahead of their statuses (doubles)


class FleetProbe:
    def __init__(self, options: FleetOptions, spool: Spool) -> None:
        self.options = options
        self.spool = spool
        self.ssm: BaseClient = aws_client("ssm", options.region, options.profile)
        self.s3: BaseClient = aws_client("s3", options.region, options.profile)
        self.send_command_calls = 0

    def run(self, batches: Sequence[fanout.Batch], probe: str) -> None:
        """Run `probe` on every batch's members; each ends with a spool result or error. One
        frame nonce for the whole fleet: every instance sees the same script."""
        nonce = secrets.token_hex(16)
        script = frame.wrapper_script(probe, nonce, chunk=None)  # all of it inline: S3 keeps it whole
        commands = [c for c in (self._send(b, script) for b in batches) if c is not None]
        with ThreadPoolExecutor(_READERS) as pool:
            while any(c.pending for c in commands):
                time.sleep(self.options.poll_interval)
                for command in commands:
                    if command.pending:
                        self._round(command, nonce, pool)

    def _error(self, instance_id: str, command_id: str | None, message: str, inv: dict[str, Any] | None = None) -> None:
        inv = inv or {}
        line = SsmTransportError(instance_id, command_id, message, inv.get("Status"), inv.get("StatusDetails"))
        self.spool.put_error(instance_id, str(line))

    def _send(self, batch: fanout.Batch, script: str) -> _Command | None:
        o = self.options
        rounds = fanout.waves(len(batch.members), o.concurrency)
        timeout = fanout.delivery_timeout(o.delivery_timeout, o.execution_timeout, rounds)
        params = fanout.send_params(batch, script, o.bucket, S3_PREFIX, o.concurrency, timeout, o.execution_timeout)
        self.send_command_calls += 1
        try:
            command_id = self.ssm.send_command(**params)["Command"]["CommandId"]
        except (ClientError, BotoCoreError) as exc:
            for instance_id in batch.members:
                self._error(instance_id, None, f"SendCommand failed: {exc}")
            return None
        deadline = time.monotonic() + timeout + o.execution_timeout + _GRACE
        prefix = fanout.command_prefix(S3_PREFIX, command_id)
        return _Command(command_id, set(batch.members), deadline, prefix, stall=o.stall)

    def _read(self, key_or_url: str, instance_id: str, nonce: str) -> _Read:
        """Fetch, check and spool one instance's frame: (the problem, or None; its header). Whether
        it is that instance's own frame is settled later, against the service's report (`_settle`)."""
        o = self.options
        try:
            header = frame.read_result(
                read_s3_stdout(key_or_url, o.bucket, o.max_output_bytes, o.region, o.profile), nonce
            )
            if header.size != len(header.first):
                raise frame.FrameError(f"frame has {len(header.first)} characters, header says {header.size}")
            self.spool.put_result(instance_id, *frame.decode(header.first, header.sha256, o.max_output_bytes))
        except (frame.FrameError, ClientError, BotoCoreError) as exc:
            return f"no intact result in s3://{o.bucket}/ ({exc})", None
        return None, header

    def _bound_read(self, inv: dict[str, Any], read: _Read, nonce: str) -> str | None:
        """The problem with an instance's read frame, or None when it is the frame the service
        reports for that instance. An object another writer put under the instance's key before
        its agent uploaded is read once more, from the URL the service names."""
        reported = fanout.reported_output(inv)
        mismatch = "the S3 object under this instance's key is not the output SSM reports for it (another writer?)"
        problem, header = read
        if header is not None and frame.bound(header, reported, nonce):
            return None
        if fanout.stdout_url(inv):
            problem, header = self._read(fanout.stdout_url(inv), inv.get("InstanceId", ""), nonce)
            if header is not None and frame.bound(header, reported, nonce):
                return None
        return problem or mismatch

    def _new_objects(self, command: _Command, nonce: str, pool: ThreadPoolExecutor) -> bool:
        found = False
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.options.bucket, Prefix=command.prefix)
        with contextlib.suppress(ClientError, BotoCoreError):  # a failed listing: the next round lists again
            for page in pages:
                for obj in page.get("Contents", ()):
                    instance_id = fanout.instance_of_key(obj["Key"], command.prefix)
                    if instance_id in command.pending and instance_id not in command.reads:
                        command.reads[instance_id] = pool.submit(self._read, obj["Key"], instance_id, nonce)
                        found = True
        return found

    def _round(self, command: _Command, nonce: str, pool: ThreadPoolExecutor) -> None:
        now = time.monotonic()
        if now < command.next_listing and now <= command.deadline:
            return
        if self._new_objects(command, nonce, pool):
            command.last_progress = now
        # A listing of the whole prefix grows with the fleet: list again only after _LISTING_PAUSE
        # times its own duration, so that the rollout's listings stay linear in the fleet.
        command.next_listing = time.monotonic() + _LISTING_PAUSE * (time.monotonic() - now)
        self._advance(command, nonce, pool)
        everything = command.pending <= command.reads.keys()
        stalled = now - command.last_progress >= command.stall
        if not (now > command.deadline or (now >= command.next_page and (everything or stalled))):
            return
        settled = self._settle(command, nonce, pool)
        if command.pending and everything:  # the statuses lag the objects: page again, later each time
            command.next_page = time.monotonic() + command.backoff
            command.backoff *= 2
        if not settled and not everything:
            command.stall *= 2
        if now > command.deadline and command.pending:
            with contextlib.suppress(ClientError, BotoCoreError):  # so a late delivery does not run after we gave up
                self.ssm.cancel_command(CommandId=command.command_id)
            for instance_id in sorted(command.pending):
                self._error(instance_id, command.command_id, "no result within the timeouts")
            command.pending.clear()

    def _settle(self, command: _Command, nonce: str, pool: ThreadPoolExecutor) -> int:
        """Page the command's invocations; finish every pending instance that is terminal."""
        pages = self.ssm.get_paginator("list_command_invocations").paginate(
            CommandId=command.command_id, Details=True, MaxResults=_PAGE
        )
        try:
            invocations = [inv for page in pages for inv in page["CommandInvocations"]]
        except (ClientError, BotoCoreError):  # throttled past botocore's retries: page again next time
            return 0
        settled = self._finish(command, invocations, nonce, pool)
        if settled:
            command.last_progress = time.monotonic()
        return settled

    def _finish(
        self, command: _Command, invocations: list[dict[str, Any]], nonce: str, pool: ThreadPoolExecutor
    ) -> int:
        """Finish every pending instance these invocations say is terminal: its result bound to
        the service's report is published to its session, or it gets its one-line error."""
        settled = 0
        for inv in invocations:
            instance_id = inv.get("InstanceId", "")
            if instance_id not in command.pending or not fanout.terminal(inv):
                continue
            read = command.reads.get(instance_id)
            if read is None and fanout.invocation_problem(inv) is None and fanout.stdout_url(inv):
                read = pool.submit(self._read, fanout.stdout_url(inv), instance_id, nonce)
            # Wait for the read even when the status says failed, so it cannot overwrite the error.
            read_problem = self._bound_read(inv, read.result(), nonce) if read else "no output in S3"
            problem = fanout.invocation_problem(inv) or read_problem
            if problem:
                self._error(instance_id, command.command_id, problem, inv)
            else:
                self.spool.publish(instance_id)
            command.pending.discard(instance_id)
            settled += 1
        return settled

    def _advance(self, command: _Command, nonce: str, pool: ThreadPoolExecutor) -> None:
        """While the rollout goes on: finish the invocations page by page, in the service's order,
        so that sessions judge the first hosts while the last are probed. A page with an instance
        still running is asked again later (its token kept); what this misses, `_settle` finds."""
        while command.cursor != _END and len(command.reads) - command.advanced >= _PAGE:
            params: dict[str, Any] = {"CommandId": command.command_id, "Details": True, "MaxResults": _PAGE}
            if command.cursor:
                params["NextToken"] = command.cursor
            try:
                page = self.ssm.list_command_invocations(**params)
            except (ClientError, BotoCoreError):
                return
            invocations = page.get("CommandInvocations", [])
            if self._finish(command, invocations, nonce, pool):
                command.last_progress = time.monotonic()
            if any(inv.get("InstanceId") in command.pending for inv in invocations):
                command.advanced = len(command.reads)  # ask for this page again when more came
                return
            command.cursor = page.get("NextToken") or _END
