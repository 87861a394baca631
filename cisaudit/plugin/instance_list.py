"""`--ssm-instances-file FILE`: the SSM instances a run audits, as a job before the shards listed
them once (`python -m cisaudit.plugin.ssm_list`; README "Past one runner"), so no shard pages a
tag's whole listing again. Each shard reads the same file and audits its `--shard K/N` share.

The file is untrusted input and read fail-closed: one instance id a line (blank lines and
`# ...` comments ignored); any other line, an id given twice, no id at all, or fewer ids than
the header of the list step counts (a file cut short) is a one-line usage error (exit 4). An id
that is offline or not managed when the shard runs stays a host of the run: its error is
reported, as for `--ssm-targets` (plugin `_ssm_specs`). Parsing here is pure; `read` opens the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cisaudit.host.hostspec import INSTANCE_ID
from cisaudit.model.shard import Shard
from cisaudit.plugin.options import OptionError

if TYPE_CHECKING:
    from cisaudit.host.ssm.backend import Discovery  # boto3: imported only by SSM runs

OPTION = "--ssm-instances-file"
MAX_BYTES = 64 << 20  # about 3 million ids; more is not a list of instances
HEADER = re.compile(r"#\s*cisaudit-instances\s+count=(\d+)\b.*")
WRITE_IT = "write it with python -m cisaudit.plugin.ssm_list (one instance id a line)"


def render(ids: Sequence[str], about: str) -> str:
    """The file the list step writes: a header that counts the ids (so a shard refuses a file cut
    short), then one id a line. `about` (targets, time) is a comment on the header line."""
    return "".join([f"# cisaudit-instances count={len(ids)} {about}\n", *(f"{i}\n" for i in ids)])


def parse(text: str, name: str) -> list[str]:
    """The instance ids of a file's text, in their order; OptionError (one line) for anything else."""
    ids: list[str] = []
    seen: set[str] = set()
    count: int | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line, where = raw.strip(), f"{OPTION}: {name}:{number}:"
        header = HEADER.fullmatch(line)
        if header and (ids or count is not None):
            raise OptionError(f"{where} a second list header (two files joined?); {WRITE_IT}")
        if header:
            count = int(header[1])
            continue
        if not line or line.startswith("#"):
            continue
        if not INSTANCE_ID.fullmatch(line):
            raise OptionError(f"{where} {line[:40]!r} is not a managed instance id (i-0123456789abcdef0); {WRITE_IT}")
        if line in seen:
            raise OptionError(f"{where} {line} is listed twice; {WRITE_IT}")
        seen.add(line)
        ids.append(line)
    if not ids:
        raise OptionError(f"{OPTION}: {name} holds no instance id; {WRITE_IT}")
    if count is not None and count != len(ids):
        raise OptionError(
            f"{OPTION}: {name} holds {len(ids)} instance ids, its header counts {count} (cut short?); "
            "take the list job's whole file"
        )
    return ids


def read(path: str) -> list[str]:
    """The ids of the file at `path` (`parse`); OptionError (one line) when it cannot be read."""
    if not path.strip():
        raise OptionError(f"{OPTION} is empty (an unset variable?): give the FILE the list job wrote, or leave it out")
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise OptionError(f"{OPTION}: {path}: {exc.strerror or exc}; give the FILE the list job wrote") from None
    if len(data) > MAX_BYTES:
        raise OptionError(f"{OPTION}: {path} is over {MAX_BYTES >> 20} MiB: not a list of instance ids; {WRITE_IT}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise OptionError(f"{OPTION}: {path} is not UTF-8 text; {WRITE_IT}") from None
    return parse(text, path)


def add_option(parser: pytest.Parser) -> None:
    group = parser.getgroup("cisaudit-shard", "cisaudit across CI jobs (README: Past one runner)")
    group.addoption(
        OPTION,
        default=None,
        metavar="FILE",
        help="audit the SSM instances this file lists (one id a line, as python -m cisaudit.plugin.ssm_list "
        "writes it once for every --shard job): no tag listing; an id offline or not managed is that host's error",
    )


def check(config: pytest.Config) -> None:
    """The file replaces --ssm-targets' listing: not both."""
    if config.getoption("ssm_instances_file") is not None and config.getoption("ssm_targets"):
        raise OptionError(
            f"{OPTION} and --ssm-targets both name the instances: give the list job --ssm-targets, the shards {OPTION}"
        )


def discover(config: pytest.Config, shard: Shard | None, specs: Callable[[Discovery], list[str]]) -> list[str]:
    """The file's instances (this shard's share) as ssm:// specs (`specs`, the plugin's for every
    SSM run), their status asked 50 ids to a DescribeInstanceInformation call and never by tag;
    the fan-out sends each call's Online ids as it comes (plugin/fleet_audit.py). Controller only:
    the plugin hands workers the list."""
    ids = read(config.getoption("ssm_instances_file"))
    mine = shard.instances(ids) if shard is not None else ids
    if not mine:
        return []
    from cisaudit.host.ssm.backend import describe_instances  # boto3 only for SSM runs
    from cisaudit.plugin.fleet_audit import discovered, start_before_discovery

    # Every id asked about is this run's: the fan-out sends it by id as its call answers.
    early = start_before_discovery(config, "", shard or Shard(1, 1))
    region, profile = config.getoption("ssm_region"), config.getoption("aws_profile")
    return discovered(early, lambda on_page: describe_instances(mine, region, profile, on_page), specs)
