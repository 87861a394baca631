"""A fleet audit's probe over Run Command's own fan-out (the plan is pure code in `fanout.py`).

One SendCommand per batch; each instance's framed output (`frame.py`, whole, never cut) is read
from S3 as soon as its object appears, and decoded into a spool file per instance that the
host's session reads (`Spool`), so the runner holds no fleet's worth of output in memory.
Statuses come from ListCommandInvocations, paginated, once the S3 objects of a command's
instances are all there, or when no new one came for a while, or at the deadline. Every
instance ends with a result or a one-line error; nothing else becomes a verdict.

A tag's command can be sent before its instances are listed (`send_tag`, then `bind`): the
rollout runs while DescribeInstanceInformation pages. Until bound, its outputs are read but
nothing is published. Once bound, an invocation for an instance the listing did not name is
reported (`unlisted`), never audited, and a listed instance the command did not reach is sent
by instance id. Instance ids can also be streamed in as a listing pages (`stream`): they go 50
to a SendCommand, and such small commands are followed by their invocations' pages alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import secrets
import threading
import time
from collections.abc import Iterable
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
    tag: tuple[str, str] | None = None  # sent by this tag (else by instance ids)
    listed: frozenset[str] | None = frozenset()  # what the tag's listing named; None: not bound yet
    seen: set[str] = field(default_factory=set)  # instances with an invocation of this command
    reported: set[str] = field(default_factory=set)  # of those, the ones `unlisted` names
    cancelled: bool = False
    reads: dict[str, Future[_Read]] = field(default_factory=dict)
    last_progress: float = field(default_factory=time.monotonic)
    stall: float = 5.0
    next_page: float = 0.0  # no paging before this (monotonic)
    cursor: str | None = None  # ListCommandInvocations token of the first page not finished (_advance)
    advanced: int = 0  # reads there were when _advance last stopped
    next_listing: float = 0.0  # no S3 listing before this (monotonic)
    backoff: float = 1.0  # wait after a paging that found S3 objects ahead of their statuses (doubles)


class FleetProbe:
    def __init__(self, options: FleetOptions, spool: Spool, probe: str) -> None:
        self.options = options
        self.spool = spool
        self.ssm: BaseClient = aws_client("ssm", options.region, options.profile)
        self.s3: BaseClient = aws_client("s3", options.region, options.profile)
        self.send_command_calls = 0
        # One frame nonce for the whole fleet: every instance sees the same script.
        self.nonce = secrets.token_hex(16)
        self.script = frame.wrapper_script(probe, self.nonce, chunk=None)  # all of it inline: S3 keeps it whole
        self.unlisted: list[str] = []  # one line per invocation for an instance its tag's listing did not name
        self._commands: list[_Command] = []
        self._batches: list[fanout.Batch] = []  # to send, in the fan-out's thread
        self._streamed: list[str] = []  # instance ids to send, 50 to a command
        self._closed = False  # no batch or id comes any more
        self._watched: set[str] = set()  # every instance that must end with a result or error
        self._lock = threading.Lock()
        self._wake = threading.Event()  # something to send: the fan-out's thread stops waiting

    def watch(self, instance_ids: Iterable[str]) -> None:
        """Instances that must end with a spool result or error, whatever happens to the fan-out."""
        with self._lock:
            self._watched.update(instance_ids)

    def watched(self) -> list[str]:
        with self._lock:
            return sorted(self._watched)

    def send_tag(self, tag: tuple[str, str]) -> _Command | None:
        """Send the probe to a tag's instances now, before they are listed; `bind` says which are ours."""
        return self._send(fanout.Batch((), tag), bound=False)

    def bind(self, command: _Command, members: Iterable[str], listed: Iterable[str]) -> None:
        """The tag's listing is in: `members` are the instances this command audits, `listed` every
        instance the listing named for the tag (online or not)."""
        with self._lock:
            command.pending = set(members)
            command.listed = frozenset(listed)
            timeout = fanout.delivery_timeout(
                self.options.delivery_timeout,
                self.options.execution_timeout,
                fanout.waves(len(command.pending), self.options.concurrency),
            )
            command.deadline = time.monotonic() + timeout + self.options.execution_timeout + _GRACE

    def add(self, batches: Iterable[fanout.Batch]) -> None:
        """Batches for the fan-out's thread to send."""
        with self._lock:
            self._batches += batches
        self._wake.set()

    def stream(self, instance_ids: Iterable[str]) -> None:
        """Instances to probe by id, as a listing finds them: sent 50 to a command."""
        ids = list(instance_ids)
        with self._lock:
            self._streamed += ids
            self._watched.update(ids)
        if len(self._streamed) >= _PAGE:
            self._wake.set()

    def close(self) -> None:
        """Nothing more comes: `run` ends once every instance sent has its result or error."""
        with self._lock:
            self._closed = True
        self._wake.set()

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    def run(self) -> None:
        """Send what was added, and follow every command until each member has a spool result or
        error; until `close`, wait for more."""
        with ThreadPoolExecutor(_READERS) as pool:
            while True:
                for batch in self._take_batches():
                    self._send(batch)
                with self._lock:
                    commands = list(self._commands)
                    closed = self._closed and not self._batches and not self._streamed
                # A tag's command also until it is cancelled (_give_up), once its members are done.
                busy = [c for c in commands if c.pending or c.listed is None or (c.tag and not c.cancelled)]
                if closed and not busy:
                    return
                self._wake.wait(self.options.poll_interval)
                self._wake.clear()
                for command in busy:
                    self._round(command, pool)

    def _take_batches(self) -> list[fanout.Batch]:
        """The batches to send now: those added, and the streamed ids 50 at a time (the rest at `close`)."""
        with self._lock:
            batches, self._batches = self._batches, []
            whole = len(self._streamed) if self._closed else len(self._streamed) // _PAGE * _PAGE
            ids, self._streamed = self._streamed[:whole], self._streamed[whole:]
        return batches + [fanout.Batch(tuple(ids[n : n + _PAGE])) for n in range(0, len(ids), _PAGE)]

    def _error(self, instance_id: str, command_id: str | None, message: str, inv: dict[str, Any] | None = None) -> None:
        inv = inv or {}
        line = SsmTransportError(instance_id, command_id, message, inv.get("Status"), inv.get("StatusDetails"))
        self.spool.put_error(instance_id, str(line))

    def _send(self, batch: fanout.Batch, bound: bool = True) -> _Command | None:
        """One SendCommand. A tag's command not `bound` yet may reach any number of instances:
        its delivery timeout is the API's longest, and it is cancelled once its members are done."""
        o = self.options
        rounds = fanout.waves(len(batch.members), o.concurrency)
        timeout = fanout.delivery_timeout(o.delivery_timeout, o.execution_timeout, rounds)
        timeout = timeout if bound else fanout.MAX_DELIVERY_TIMEOUT
        params = fanout.send_params(
            batch, self.script, o.bucket, S3_PREFIX, o.concurrency, timeout, o.execution_timeout
        )
        self.send_command_calls += 1
        try:
            command_id = self.ssm.send_command(**params)["Command"]["CommandId"]
        except (ClientError, BotoCoreError) as exc:
            for instance_id in batch.members:
                self._error(instance_id, None, f"SendCommand failed: {exc}")
            return None
        deadline = time.monotonic() + timeout + o.execution_timeout + _GRACE if bound else math.inf
        prefix = fanout.command_prefix(S3_PREFIX, command_id)
        listed = frozenset(batch.members) if bound else None
        command = _Command(command_id, set(batch.members), deadline, prefix, batch.tag, listed, stall=o.stall)
        with self._lock:
            self._commands.append(command)
        return command

    def _read(self, key_or_url: str, instance_id: str, command_id: str) -> _Read:
        """Fetch, check and spool one instance's frame: (the problem, or None; its header). Whether
        it is that instance's own frame is settled later, against the service's report (`_settle`)."""
        o = self.options
        try:
            header = frame.read_result(
                read_s3_stdout(key_or_url, o.bucket, o.max_output_bytes, o.region, o.profile), self.nonce
            )
            if header.size != len(header.first):
                raise frame.FrameError(f"frame has {len(header.first)} characters, header says {header.size}")
            rc, out, err = frame.decode(header.first, header.sha256, o.max_output_bytes)
            self.spool.put_result(instance_id, rc, out, err, source=command_id)
        except (frame.FrameError, ClientError, BotoCoreError) as exc:
            return f"no intact result in s3://{o.bucket}/ ({exc})", None
        # Spooled: the body is on disk. What binds it (`frame.bound`) is the header alone; a body
        # kept per instance until the binding was 50 KB each, half a gigabyte at 10,000.
        return None, dataclasses.replace(header, first="")

    def _bound_read(self, inv: dict[str, Any], read: _Read) -> str | None:
        """The problem with an instance's read frame, or None when it is the frame the service
        reports for that instance. An object another writer put under the instance's key before
        its agent uploaded is read once more, from the URL the service names."""
        reported = fanout.reported_output(inv)
        mismatch = "the S3 object under this instance's key is not the output SSM reports for it (another writer?)"
        problem, header = read
        if header is not None and frame.bound(header, reported, self.nonce):
            return None
        if fanout.stdout_url(inv):
            problem, header = self._read(fanout.stdout_url(inv), inv.get("InstanceId", ""), inv.get("CommandId", ""))
            if header is not None and frame.bound(header, reported, self.nonce):
                return None
        return problem or mismatch

    def _new_objects(self, command: _Command, pool: ThreadPoolExecutor) -> bool:
        """Start reading each new stdout object of a member (of any instance while the tag's
        command is not bound yet: nothing is published before the binding)."""
        found = False
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.options.bucket, Prefix=command.prefix)
        with contextlib.suppress(ClientError, BotoCoreError):  # a failed listing: the next round lists again
            for page in pages:
                for obj in page.get("Contents", ()):
                    instance_id = fanout.instance_of_key(obj["Key"], command.prefix)
                    wanted = command.listed is None or instance_id in command.pending
                    if instance_id and wanted and instance_id not in command.reads:
                        read = pool.submit(self._read, obj["Key"], instance_id, command.command_id)
                        command.reads[instance_id] = read
                        found = True
        return found

    def _round(self, command: _Command, pool: ThreadPoolExecutor) -> None:
        now = time.monotonic()
        if not command.pending and command.listed is not None:
            self._give_up(command, now)
            return
        if command.tag is None and len(command.pending) <= _PAGE:  # one page says it all: no S3 listing
            if now >= command.next_page or now > command.deadline:
                self._settle(command, pool)
                command.next_page, command.backoff = time.monotonic() + command.backoff, min(2 * command.backoff, 8)
            self._give_up(command, now)
            return
        if now < command.next_listing and now <= command.deadline:
            return
        if self._new_objects(command, pool):
            command.last_progress = now
        # A listing of the whole prefix grows with the fleet: list again only after _LISTING_PAUSE
        # times its own duration, so that the rollout's listings stay linear in the fleet.
        command.next_listing = time.monotonic() + _LISTING_PAUSE * (time.monotonic() - now)
        if command.listed is None:  # no member known yet: only read
            return
        self._advance(command, pool)
        everything = command.pending <= command.reads.keys()
        stalled = now - command.last_progress >= command.stall
        if not (now > command.deadline or (now >= command.next_page and (everything or stalled))):
            return
        settled = self._settle(command, pool)
        if command.pending and everything:  # the statuses lag the objects: page again, later each time
            command.next_page = time.monotonic() + command.backoff
            command.backoff *= 2
        if not settled and not everything:
            command.stall *= 2
        self._give_up(command, now)

    def _give_up(self, command: _Command, now: float) -> None:
        """Past the deadline: cancel, so a late delivery does not run after we gave up; each member
        still pending gets its error. A tag's command is cancelled once its members are done too:
        it may still be waiting on instances that are not ours (offline ones, say)."""
        late = now > command.deadline and command.pending
        if late or (command.tag is not None and not command.pending and not command.cancelled):
            command.cancelled = True
            with contextlib.suppress(ClientError, BotoCoreError):
                self.ssm.cancel_command(CommandId=command.command_id)
        if late:
            for instance_id in sorted(command.pending):
                self._error(instance_id, command.command_id, "no result within the timeouts")
            command.pending.clear()

    def _settle(self, command: _Command, pool: ThreadPoolExecutor) -> int:
        """Page the command's invocations; finish every pending instance that is terminal. Once
        every member it reached is done, a member it never reached is sent by id."""
        pages = self.ssm.get_paginator("list_command_invocations").paginate(
            CommandId=command.command_id, Details=True, MaxResults=_PAGE
        )
        try:
            invocations = [inv for page in pages for inv in page["CommandInvocations"]]
        except (ClientError, BotoCoreError):  # throttled past botocore's retries: page again next time
            return 0
        settled = self._finish(command, invocations, pool)
        if settled:
            command.last_progress = time.monotonic()
        unreached = sorted(command.pending - command.seen)
        # Every member it reached is done (an offline instance's invocation may wait for days):
        # the others it will not reach.
        if command.tag is not None and unreached and not command.pending & command.seen:
            command.pending -= set(unreached)  # e.g. tagged after the command was sent, before the listing
            self.add([fanout.Batch(tuple(unreached[n : n + _PAGE])) for n in range(0, len(unreached), _PAGE)])
        return settled

    def _finish(self, command: _Command, invocations: list[dict[str, Any]], pool: ThreadPoolExecutor) -> int:
        """Finish every pending instance these invocations say is terminal: its result bound to
        the service's report is published to its session, or it gets its one-line error. An
        invocation for an instance its tag's listing did not name is reported, not audited."""
        done: list[tuple[dict[str, Any], Future[_Read] | None]] = []
        for inv in invocations:
            instance_id = inv.get("InstanceId", "")
            command.seen.add(instance_id)
            if command.listed is not None and instance_id not in command.listed and instance_id not in command.reported:
                command.reported.add(instance_id)
                self.unlisted.append(instance_id)
            if instance_id not in command.pending or not fanout.terminal(inv):
                continue
            read = command.reads.get(instance_id)
            if read is None and fanout.invocation_problem(inv) is None and fanout.stdout_url(inv):
                read = command.reads[instance_id] = pool.submit(
                    self._read, fanout.stdout_url(inv), instance_id, command.command_id
                )
            done.append((inv, read))
        for inv, read in done:  # every read started first: they run side by side
            instance_id = inv["InstanceId"]
            # Wait for the read even when the status says failed, so it cannot overwrite the error.
            read_problem = self._bound_read(inv, read.result()) if read else "no output in S3"
            problem = fanout.invocation_problem(inv) or read_problem
            if problem:
                self._error(instance_id, command.command_id, problem, inv)
            else:
                self.spool.publish(instance_id, source=command.command_id)
            command.pending.discard(instance_id)
        return len(done)

    def _advance(self, command: _Command, pool: ThreadPoolExecutor) -> None:
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
            if self._finish(command, invocations, pool):
                command.last_progress = time.monotonic()
            if any(inv.get("InstanceId") in command.pending for inv in invocations):
                command.advanced = len(command.reads)  # ask for this page again when more came
                return
            command.cursor = page.get("NextToken") or _END
