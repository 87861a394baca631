"""A waiver scoped by SSM tags (issue 25 item 2) through the SSM API emulator, two instances mapped
to this machine: it waives the failing control only on the instance carrying every tag, serially
and under xdist (the controller resolves the tags once; workers never call DescribeInstanceInformation),
and the exception register and results.json show the tag scope. A lookup that fails is a usage error;
a run without ssm:// hosts never looks tags up."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from selftests.kernel import KernelSandbox
from selftests.ssm_emulator import SsmEmulator
from selftests.suite_runner import run_pytest, run_suite

TAGGED, UNTAGGED = "i-00000000000000a01", "i-00000000000000a02"  # UNTAGGED has Team=web but not Env=prod
EXPIRES = dt.date.today() + dt.timedelta(days=90)
WAIVER = (
    f"1.1.4:\n  justification: SEC-40 prod web audited by the agent\n  expiration_date: {EXPIRES}\n"
    "  scope:\n    ssm_tags: {Env: prod, Team: web}\n"
)
SCOPE = "SSM tags Env=prod, Team=web"


class Emulator(SsmEmulator):
    """The emulator, noting each DescribeInstanceInformation asked by tag (the per-host ping checks ask by id)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag_lookups: list[list[str]] = []

    def _describe_instance_information(self, req: dict[str, Any]) -> dict[str, Any]:
        keys = [f["Key"] for f in req.get("Filters", [])]
        if any(k.startswith("tag:") for k in keys) and not req.get("NextToken"):
            self.tag_lookups.append(sorted(keys))
        return super()._describe_instance_information(req)


@pytest.mark.kernel
@pytest.mark.parametrize("workers", ["0", "2"])
def test_tag_scoped_waiver_waives_only_the_tagged_instance(kernel: KernelSandbox, tmp_path: Path, workers: str) -> None:
    kernel.make_path("/run/containerd", "dir")  # 1.1.4 applies; no rule watches it (auditctl -D): it fails
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(WAIVER)
    tags = {TAGGED: {"Env": "prod", "Team": "web"}, UNTAGGED: {"Team": "web"}}
    hosts = [f"ssm://{TAGGED}", f"ssm://{UNTAGGED}"]
    with Emulator(dict.fromkeys(tags, "local://"), tags=tags) as emu:
        run = run_suite(
            tmp_path,
            hosts,
            "--controls=1.1.4",
            "--ssm-region=us-east-1",
            f"--waivers={waivers}",
            f"-n={workers}",
            env=emu.environ,
        )
        lookups = emu.tag_lookups
    waived, failed = run.case(hosts[0], "1.1.4", "live"), run.case(hosts[1], "1.1.4", "live")
    assert (waived.verdict, waived.outcome, waived.waiver) == (
        "fail",
        "skipped",
        "SEC-40 prod web audited by the agent",
    )
    assert (failed.verdict, failed.outcome, failed.waiver) == ("fail", "failure", ""), run.output[-3000:]
    assert run.returncode == 1
    assert lookups == [["tag:Env", "tag:Team"]]  # one tag set, looked up once, by the controller
    document = json.loads((tmp_path / "results.json").read_text())
    [entry] = document["waivers"]
    assert (entry["scope"], entry["applied_on"], entry["matches_nothing"]) == (SCOPE, hosts[:1], False)
    assert SCOPE in (tmp_path / "compliance.html").read_text()


def test_a_failed_tag_lookup_is_a_usage_error_and_only_ssm_runs_look(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(WAIVER)
    env = {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    args = ("--controls=1.1.4", f"--waivers={waivers}", "--aws-profile=no-such-profile", "--collect-only", "-q")
    ssm = run_pytest(f"--hosts=ssm://{TAGGED}", "--ssm-region=us-east-1", *args, env=env)
    assert ssm.returncode == 4, ssm.stdout + ssm.stderr
    [line] = [x for x in ssm.stderr.splitlines() if "scope.ssm_tags" in x]
    assert "--waivers: cannot resolve scope.ssm_tags (SSM DescribeInstanceInformation)" in line, ssm.stderr
    assert "Traceback" not in ssm.stderr
    local = run_pytest("--hosts=local://", *args, env=env)  # no ssm:// host: no lookup, nothing to refuse
    assert local.returncode == 0, local.stdout + local.stderr
