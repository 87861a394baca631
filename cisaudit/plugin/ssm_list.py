"""The job before the shards: list `--ssm-targets` once and write the instance ids every
`--shard K/N` job reads with `--ssm-instances-file` (README "Past one runner"):

    python -m cisaudit.plugin.ssm_list --ssm-targets "tag:Role=docker-host" --ssm-region eu-west-1 --out instances.txt

Every instance a tag's DescribeInstanceInformation listing names is written, Online or not (a
shard reports one offline as that host's error, as a run with --ssm-targets does); an instance id
target is written as given (its shard asks about it). A target the run would refuse (a tag no
managed instance has) is a one-line usage error (exit 4), and then no file is written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from cisaudit.host.hostspec import INSTANCE_ID
from cisaudit.plugin.instance_list import render
from cisaudit.plugin.options import OptionError, ssm_targets

USAGE_ERROR = 4  # pytest.ExitCode.USAGE_ERROR, as the suite's own usage errors


def listed(targets: list[str], region: str | None, profile: str | None) -> list[str]:
    """Every instance the targets name or whose tag they list, each once, in their order."""
    from cisaudit.host.ssm.backend import discover_targets  # boto3 only here

    tags = [t for t in targets if not INSTANCE_ID.fullmatch(t)]
    found = discover_targets(",".join(tags), region, profile) if tags else None
    ids = [i for instances in (found.listed.values() if found else ()) for i in instances]
    refused = [p for p in (found.problems if found else ()) if p.why.refuses_run]
    if refused:
        raise OptionError(f"--ssm-targets: {refused[0]}; correct the target, or leave it out")
    return list(dict.fromkeys([*ids, *(t for t in targets if INSTANCE_ID.fullmatch(t))]))


def write(path: Path, text: str) -> None:
    """The whole file or none: a shard job never reads a half-written list."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cisaudit.plugin.ssm_list", description=__doc__.splitlines()[0])
    parser.add_argument("--ssm-targets", required=True, help="instance ids and/or tag:Key=Value, as the suite takes")
    parser.add_argument("--ssm-region", default=None, help="AWS region")
    parser.add_argument("--aws-profile", default=None, help="AWS profile (default: AWS_PROFILE / chain)")
    parser.add_argument("--out", type=Path, required=True, help="the file the shards read (--ssm-instances-file)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        targets = ssm_targets(args.ssm_targets)
        ids = listed(targets, args.ssm_region, args.aws_profile)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write(args.out, render(ids, f"listed={stamp} region={args.ssm_region or '-'} targets={','.join(targets)}"))
    except (OptionError, OSError) as exc:
        print(f"cisaudit ssm_list: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except (BotoCoreError, ClientError) as exc:  # the API, not the command line: no file, exit 1
        print(f"cisaudit ssm_list: the listing failed: {exc}", file=sys.stderr)
        return 1
    print(f"cisaudit: listed {len(ids)} SSM instance(s) in {time.monotonic() - started:.1f} s into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
