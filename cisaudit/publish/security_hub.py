"""`--asff=PATH` and `--security-hub`: the run's findings in ASFF, written and/or imported.

The account comes from STS (GetCallerIdentity), the region from --ssm-region / the AWS
configuration, as for SSM. Every finding is checked against botocore's AwsSecurityFinding shape
first (required fields, types). The import reads back this tool's findings that are not PASSED
(GetFindings, then filtered here too), sends what `asff.to_import` selects in chunks of at most
100 findings and 6 MB, at most 10 calls a second, and checks FailedCount: a finding refused, a
call refused, or a finding that breaks the model is its host's error.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError
from botocore.model import Shape, StructureShape
from botocore.validate import ParamValidator

from cisaudit.host.ssm.backend import aws_client
from cisaudit.outputs.files import replaced
from cisaudit.outputs.results import RunResults
from cisaudit.publish import asff
from cisaudit.publish.compliance_items import instance_of

CALLS_PER_SECOND = 10.0
_NOT_BLANK = re.compile(r".*\S.*", re.DOTALL)
_shape_lock = threading.Lock()
_shapes: dict[str, Shape] = {}


def finding_shape() -> StructureShape:
    """AwsSecurityFinding from the installed botocore's securityhub model."""
    with _shape_lock:
        if "finding" not in _shapes:
            model = botocore.session.get_session().get_service_model("securityhub")
            _shapes["finding"] = model.shape_for("AwsSecurityFinding")
        shape = _shapes["finding"]
    assert isinstance(shape, StructureShape)
    return shape


def model_errors(finding: Mapping[str, object]) -> str:
    """'' when the finding has every required field (non-blank) with the model's types."""
    shape = finding_shape()
    report = ParamValidator().validate(dict(finding), shape)
    problems = [report.generate_report()] if report.has_errors() else []
    blank = [
        n
        for n in shape.required_members
        if isinstance(finding.get(n), str) and not _NOT_BLANK.fullmatch(str(finding[n]))
    ]
    problems += [f"required field {name} is blank" for name in blank]
    return "; ".join(problems)


class SecurityHubPublisher:
    name = "security-hub"

    def __init__(
        self, asff_path: str | None, import_findings: bool, region: str | None = None, profile: str | None = None
    ) -> None:
        self.asff_path = asff_path
        self.import_findings = import_findings
        self.region = region
        self.profile = profile
        self.calls: dict[str, int] = {"GetCallerIdentity": 0, "GetFindings": 0, "BatchImportFindings": 0}
        self._last_call = 0.0

    def publish(self, results: RunResults) -> Mapping[str, str]:
        """Two passes over the findings, made one at a time (a fleet's worth would not fit in
        memory): check each against the model and write the ASFF file; then import."""
        hosts = {i: h for h in results.hosts if (i := instance_of(h)) is not None}
        if not hosts:
            return {}
        try:
            place = self._place()
        except (ClientError, BotoCoreError) as exc:
            return dict.fromkeys(hosts.values(), f"Security Hub: the account is unknown (STS GetCallerIdentity: {exc})")
        try:
            errors, broken = self._check_and_write(results, place, hosts)
        except OSError as exc:  # checked at start (plugin/publish.py); a full disk still ends here
            return dict.fromkeys(hosts.values(), f"cannot write {self.asff_path}: {exc.strerror or exc}")
        if self.import_findings:
            found = (f for f in asff.findings(results, place) if f["Id"] not in broken)
            for host, error in self._import(found, hosts, place).items():
                errors.setdefault(host, error)
        return errors

    def _place(self) -> asff.Place:
        sts = aws_client("sts", self.region, self.profile)
        self.calls["GetCallerIdentity"] += 1
        identity = sts.get_caller_identity()
        region = self.region or aws_client("securityhub", self.region, self.profile).meta.region_name
        arn = str(identity.get("Arn", ""))
        return asff.Place(str(identity["Account"]), str(region), arn.split(":")[1] if arn.count(":") > 2 else "aws")

    def _check_and_write(
        self, results: RunResults, place: asff.Place, hosts: dict[str, str]
    ) -> tuple[dict[str, str], set[object]]:
        """host -> error and the ids of the findings that break botocore's model; the others
        written to --asff's file when given."""
        errors: dict[str, str] = {}
        broken: set[object] = set()
        with replaced(Path(self.asff_path)) if self.asff_path else contextlib.nullcontext(None) as out:
            if out is not None:
                out.write('{"Findings": [\n')
            separator = ""
            for item in asff.findings(results, place):
                problem = model_errors(item)
                if problem:
                    broken.add(item["Id"])
                    errors.setdefault(
                        asff.host_of(item, hosts), f"ASFF finding {item['Id']} breaks the model: {problem}"
                    )
                elif out is not None:
                    out.write(separator + json.dumps(item, sort_keys=True))
                    separator = ",\n"
            if out is not None:
                out.write("\n]}\n")
        return errors, broken

    def _import(self, found: Iterable[dict[str, object]], hosts: dict[str, str], place: asff.Place) -> dict[str, str]:
        client = aws_client("securityhub", self.region, self.profile)
        try:
            unresolved = {str(f["Id"]) for f in self._existing(client, place) if asff.host_of(f, hosts)}
        except (ClientError, BotoCoreError) as exc:
            return dict.fromkeys(hosts.values(), f"Security Hub refused GetFindings: {exc}")
        errors: dict[str, str] = {}
        for chunk in asff.chunks(asff.to_import(found, unresolved)):
            errors.update({h: e for h, e in self._send(client, chunk, hosts).items() if h not in errors})
        return errors

    def _existing(self, client: Any, place: asff.Place) -> Iterator[Mapping[str, object]]:
        """This tool's findings Security Hub holds, active and not PASSED (filtered here too:
        an endpoint may ignore filters)."""
        filters = {
            "ProductArn": [{"Value": place.product_arn, "Comparison": "EQUALS"}],
            "GeneratorId": [{"Value": asff.GENERATOR_PREFIX, "Comparison": "PREFIX"}],
            "ComplianceStatus": [{"Value": "PASSED", "Comparison": "NOT_EQUALS"}],
            "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
        }
        token: str | None = None
        while True:
            self._pace()
            self.calls["GetFindings"] += 1
            page = client.get_findings(Filters=filters, MaxResults=100, **({"NextToken": token} if token else {}))
            for item in page.get("Findings", []):
                if (
                    item.get("ProductArn") == place.product_arn
                    and str(item.get("GeneratorId", "")).startswith(asff.GENERATOR_PREFIX)
                    and item.get("RecordState", "ACTIVE") == "ACTIVE"
                    and not asff.passed(item)
                ):
                    yield item
            token = page.get("NextToken")
            if not token:
                return

    def _send(self, client: Any, chunk: list[dict[str, object]], hosts: dict[str, str]) -> dict[str, str]:
        self._pace()
        self.calls["BatchImportFindings"] += 1
        try:
            answer = client.batch_import_findings(Findings=chunk)
        except (ClientError, BotoCoreError) as exc:
            return {asff.host_of(f, hosts): f"Security Hub refused BatchImportFindings: {exc}" for f in chunk}
        errors: dict[str, str] = {}
        for failed in answer.get("FailedFindings", []):
            host = asff.host_of(failed, hosts)
            errors.setdefault(
                host,
                f"Security Hub refused finding {failed.get('Id')}: "
                f"{failed.get('ErrorCode')} {failed.get('ErrorMessage')}",
            )
        if answer.get("FailedCount", 0) and not errors:  # counted but not named: every host of the chunk
            errors = {asff.host_of(f, hosts): f"Security Hub: FailedCount {answer['FailedCount']}" for f in chunk}
        return errors

    def _pace(self) -> None:
        """At most CALLS_PER_SECOND calls a second."""
        wait = self._last_call + 1 / CALLS_PER_SECOND - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_call = time.monotonic()
