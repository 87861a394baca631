"""`--ssm-compliance`: each audited ssm:// instance's result as SSM Compliance items.

One PutComplianceItems per instance (UploadType COMPLETE, ItemContentHash: an unchanged host is
a no-op on the service's side), at most `concurrency` calls at once, through the SSM transport's
client (botocore adaptive retries). A refused call (permissions, the quota of custom types, an
item too large) is that host's error, never a silent success.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import BotoCoreError, ClientError

from cisaudit.host.ssm.backend import aws_client
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunInfo, RunResults
from cisaudit.publish.compliance_items import HostUpload, host_upload, run_id


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

    def publish(self, results: RunResults) -> Mapping[str, str]:
        """host -> why its items were not stored (empty: every ssm:// host published). Hosts go
        in batches, each host's items made in its worker: never a fleet's worth in memory."""
        summary = {
            "ExecutionTime": datetime.datetime.fromtimestamp(results.info.started, datetime.UTC),
            "ExecutionId": run_id(results.info),
            "ExecutionType": "Command",
        }
        errors: dict[str, str] = {}
        hosts = iter(results.by_host.items())
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="ssm-compliance") as pool:
            while batch := list(itertools.islice(hosts, 4 * self.concurrency)):
                for host, error in pool.map(lambda h: self._publish_host(h[0], h[1], results.info, summary), batch):
                    self.calls += error is not None
                    if error:
                        errors[host] = error
        return errors

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
