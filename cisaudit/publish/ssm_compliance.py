"""`--ssm-compliance`: each audited ssm:// instance's result as SSM Compliance items.

One PutComplianceItems per instance (UploadType COMPLETE, ItemContentHash: an unchanged host is
a no-op on the service's side), at most `concurrency` calls at once, through the SSM transport's
client (botocore adaptive retries). A refused call (permissions, the quota of custom types, an
item too large) is that host's error, never a silent success.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import BotoCoreError, ClientError

from cisaudit.host.ssm.backend import aws_client
from cisaudit.outputs.results import RunResults
from cisaudit.publish.compliance_items import HostUpload, run_id, uploads


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
        """host -> why its items were not stored (empty: every ssm:// host published)."""
        todo = uploads(results.by_host, results.info)
        self.calls += len(todo)
        summary = {
            "ExecutionTime": datetime.datetime.fromtimestamp(results.info.started, datetime.UTC),
            "ExecutionId": run_id(results.info),
            "ExecutionType": "Command",
        }
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="ssm-compliance") as pool:
            outcomes = list(pool.map(lambda u: (u.host, self._put(u, summary)), todo))
        return {host: error for host, error in outcomes if error}

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
