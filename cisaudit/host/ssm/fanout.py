"""Pure logic of a fleet audit over Run Command's own fan-out (no I/O; `fleet.py` does the calls).

One SendCommand per tag target, or per 50 instance ids (the API's limit for InstanceIds), sends
the probe; the service rolls it out at MaxConcurrency, and MaxErrors "100%" keeps one failed
instance from stopping it (the API's default, 0, stops at the first). Output goes to S3 under
`<prefix>/<CommandId>/<InstanceId>/<plugin>/<step>/stdout` (SSM user guide, "Output S3 key").
Any instance with the documented PutObject grant can write any key there, so only the agent's
own key counts, and its frame must be the one the service reports for that instance (`bound`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_IDS_PER_COMMAND = 50
# Where the agent puts AWS-RunShellScript's stdout under <prefix>/<CommandId>/<InstanceId>/: its one
# plugin (aws:runShellScript) and step 0 (SSM user guide, "Output S3 key").
STDOUT_PATH = "awsrunShellScript/0.awsrunShellScript/stdout"
MAX_ERRORS = "100%"
# --ssm-max-concurrency's default. The API's is 50 (SendCommand, MaxConcurrency), which rolls 10,000
# instances out in 200 rounds of the probe's run time; the probe only reads, and each instance runs
# it on its own, so 500 at once (20 rounds) costs the fleet nothing and its output is the same. Any
# count the API takes (up to 7 digits) or a percentage can be given instead.
DEFAULT_MAX_CONCURRENCY = "500"
MAX_DELIVERY_TIMEOUT = 2_592_000  # SendCommand's TimeoutSeconds upper bound
RUNNING = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})
COMPLETED = frozenset({"Success", "Failed"})
# StatusDetails that mean the script did not run to its end, whatever Status says.
BROKEN_DETAILS = frozenset(
    {"DeliveryTimedOut", "ExecutionTimedOut", "Undeliverable", "Terminated", "Cancelled", "Cancelling"}
)
# botocore's ssm model: MaxConcurrency is 1-7 characters, ^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$
_CONCURRENCY = re.compile(r"([1-9][0-9]{0,6})(%?)")


@dataclass(frozen=True)
class Batch:
    """One SendCommand: its target (a tag filter or instance ids) and the instances it audits."""

    members: tuple[str, ...]  # our Online instances this command audits (each in one batch only)
    tag: tuple[str, str] | None = None  # (key, value): Targets by tag; None: InstanceIds=members

    def target(self) -> dict[str, Any]:
        if self.tag is None:
            return {"InstanceIds": list(self.members)}
        return {"Targets": [{"Key": f"tag:{self.tag[0]}", "Values": [self.tag[1]]}]}


def plan_batches(instance_ids: Sequence[str], tags: Mapping[tuple[str, str], Sequence[str]]) -> list[Batch]:
    """Batches covering every id once: a tag's batch audits its ids first seen there; the ids no
    tag covers go by InstanceIds, 50 per command. An instance in two tags is probed twice, read once."""
    wanted = dict.fromkeys(instance_ids)
    batches: list[Batch] = []
    taken: set[str] = set()
    for tag, members in tags.items():
        mine = tuple(i for i in members if i in wanted and i not in taken)
        taken.update(mine)
        if mine:
            batches.append(Batch(mine, tag))
    rest = [i for i in wanted if i not in taken]
    batches += [Batch(tuple(rest[n : n + MAX_IDS_PER_COMMAND])) for n in range(0, len(rest), MAX_IDS_PER_COMMAND)]
    return batches


def parse_concurrency(text: str) -> str:
    """--ssm-max-concurrency as the API takes it: a count ("50") or a percentage ("10%")."""
    match = _CONCURRENCY.fullmatch(text.strip())
    if not match or (match[2] and int(match[1]) > 100):
        raise ValueError(f"expected a number like 50 or a percentage like 10%, got {text!r}")
    return match[0]


def waves(targets: int, concurrency: str) -> int:
    """How many rounds of MaxConcurrency instances the service needs for `targets` instances."""
    limit = int(concurrency.rstrip("%"))
    at_once = max(1, math.floor(targets * limit / 100)) if concurrency.endswith("%") else limit
    return max(1, math.ceil(targets / at_once))


def delivery_timeout(base: float, execution: float, rounds: int) -> int:
    """TimeoutSeconds for a command: the last round starts after the earlier ones ran."""
    return min(MAX_DELIVERY_TIMEOUT, max(30, math.ceil(base + (rounds - 1) * execution)))


def send_params(
    batch: Batch,
    script: str,
    bucket: str,
    prefix: str,
    concurrency: str,
    timeout_seconds: int,
    execution_timeout: float,
) -> dict[str, Any]:
    return batch.target() | {
        "DocumentName": "AWS-RunShellScript",
        "TimeoutSeconds": timeout_seconds,
        "MaxConcurrency": concurrency,
        "MaxErrors": MAX_ERRORS,
        "Parameters": {"commands": [script], "executionTimeout": [str(max(1, math.ceil(execution_timeout)))]},
        "OutputS3BucketName": bucket,
        "OutputS3KeyPrefix": prefix,
    }


def command_prefix(prefix: str, command_id: str) -> str:
    return f"{prefix}/{command_id}/"


def instance_of_key(key: str, command_prefix_: str) -> str | None:
    """The instance whose stdout object `key` is: exactly the key its agent writes for our one
    plugin and step. Any other object (stderr, or a key another instance with the PutObject grant
    made up, such as `<victim>/0/stdout`) is None."""
    if not key.startswith(command_prefix_):
        return None
    instance_id, slash, rest = key[len(command_prefix_) :].partition("/")
    return instance_id if slash and instance_id and rest == STDOUT_PATH else None


def terminal(invocation: Mapping[str, Any]) -> bool:
    return invocation.get("Status") not in RUNNING


def invocation_problem(invocation: Mapping[str, Any]) -> str | None:
    """Why a finished invocation has no usable result, or None when its script ran to its end."""
    status = invocation.get("Status")
    details = (invocation.get("StatusDetails") or "").replace(" ", "")
    if status in COMPLETED and details not in BROKEN_DETAILS:
        return None
    return f"command did not complete (Status={status or '-'}, StatusDetails={details or '-'})"


def stdout_url(invocation: Mapping[str, Any]) -> str:
    """The S3 URL of the invocation's stdout (top level, or its one plugin's with Details)."""
    plugins = invocation.get("CommandPlugins") or [{}]
    return invocation.get("StandardOutputUrl") or plugins[0].get("StandardOutputUrl") or ""


def reported_output(invocation: Mapping[str, Any]) -> str:
    """The head of stdout as the service itself reports it for this instance (ListCommandInvocations
    with Details: the plugin's Output, its first 2,500 characters; our frame's header line is first)."""
    plugins = invocation.get("CommandPlugins") or [{}]
    return str(plugins[0].get("Output") or invocation.get("StandardOutputContent") or "")
