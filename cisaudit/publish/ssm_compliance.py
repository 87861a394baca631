"""`--ssm-compliance`: each audited ssm:// instance's result as SSM Compliance items.

One PutComplianceItems per instance (UploadType COMPLETE, ItemContentHash: an unchanged host is
a no-op on the service's side), at most `concurrency` calls at once, through the SSM transport's
client (botocore adaptive retries). A refused call (permissions, the quota of custom types, an
item too large) is that host's error, never a silent success.

Without xdist each host is sent as soon as its tests are over (`host_done`, publish/stream.py), so
the calls overlap the audit; at the end a host whose final records are not the ones sent is sent
again, and every host's outcome (sent early or not) is in what `publish` returns.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from botocore.exceptions import BotoCoreError, ClientError

from cisaudit.host.ssm.backend import aws_client
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunInfo, RunResults
from cisaudit.publish.compliance_items import HostUpload, host_upload, instance_of, run_id


class SsmCompliancePublisher:
    name = "ssm-compliance"

    def __init__(
        self, compliance_type: str, region: str | None = None, profile: str | None = None, concurrency: int = 16
    ) -> None:
        self.compliance_type = compliance_type
        self.region = region
        self.profile = profile
        self.concurrency = max(1, concurrency)
        self.calls = 0
        # host -> (the records sent, the call's outcome) for the hosts sent before the end
        self._early: dict[str, tuple[Sequence[CaseRecord], Future[str | None]]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def host_done(self, host: str, records: Sequence[CaseRecord], info: RunInfo) -> None:
        """Send this host's items now, on the publisher's pool (publish/stream.py's head start)."""
        if instance_of(host) is None:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ssm-compliance")
        sent = list(records)
        self._early[host] = (sent, self._pool.submit(self._send, host, sent, info, _summary(info)))

    def _send(self, host: str, records: list[CaseRecord], info: RunInfo, summary: dict[str, object]) -> str | None:
        return self._publish_host(host, records, info, summary)[1]

    def publish(self, results: RunResults) -> Mapping[str, str]:
        """host -> why its items were not stored (empty: every ssm:// host published). Hosts go
        in batches, each host's items made in its worker: never a fleet's worth in memory."""
        summary = _summary(results.info)
        errors: dict[str, str] = {}
        hosts = iter(results.by_host.items())
        pool = self._pool or ThreadPoolExecutor(self.concurrency, thread_name_prefix="ssm-compliance")
        try:
            while batch := list(itertools.islice(hosts, 4 * self.concurrency)):
                for host, error in pool.map(lambda h: self._final(h[0], h[1], results.info, summary), batch):
                    self.calls += error is not None
                    if error:
                        errors[host] = error
        finally:
            pool.shutdown()
            self._pool, self._early = None, {}
        return errors

    def _final(
        self, host: str, records: list[CaseRecord], info: RunInfo, summary: dict[str, object]
    ) -> tuple[str, str | None]:
        """The outcome of the host's early call when it sent exactly these records, else a call now,
        made after the early call ended: each upload is COMPLETE and replaces the one before, so the
        early one must not land last. (The early calls were queued before any of these: none waits
        on a call not yet started.)"""
        sent, outcome = self._early.get(host, ((), None))
        if outcome is not None:
            early = outcome.result()
            if len(sent) == len(records) and all(a is b for a, b in zip(sent, records, strict=True)):
                return host, early
        return self._publish_host(host, records, info, summary)

    def _publish_host(
        self, host: str, records: list[CaseRecord], info: RunInfo, summary: dict[str, object]
    ) -> tuple[str, str | None]:
        """(host, None) for a host that is not ssm://, else (host, '' or the reason)."""
        upload = host_upload(host, records, info)
        return host, None if upload is None else self._put(upload, summary)

    def _put(self, upload: HostUpload, summary: dict[str, object]) -> str:
        """'' when stored, else the reason."""
        client = aws_client("ssm", self.region, self.profile)
        try:
            client.put_compliance_items(
                ResourceId=upload.instance_id,
                ResourceType="ManagedInstance",
                ComplianceType=self.compliance_type,
                ExecutionSummary=summary,
                Items=list(upload.items),
                ItemContentHash=upload.content_hash,
                UploadType="COMPLETE",
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return f"SSM Compliance refused PutComplianceItems: {error.get('Code', '?')}: {error.get('Message', exc)}"
        except BotoCoreError as exc:
            return f"SSM Compliance: PutComplianceItems failed: {exc}"
        return ""


def _summary(info: RunInfo) -> dict[str, object]:
    """The ExecutionSummary of every upload of the run."""
    return {
        "ExecutionTime": datetime.datetime.fromtimestamp(info.started, datetime.UTC),
        "ExecutionId": run_id(info),
        "ExecutionType": "Command",
    }
