"""Waivers scoped by SSM tags (model/waivers.py): the controller resolves each distinct tag set to
the instances that carry it, once, with the DescribeInstanceInformation call --ssm-targets' tag
discovery makes; xdist workers get the resolved ids in workerinput and never call AWS for them."""

from __future__ import annotations

from typing import Any

import pytest

from cisaudit.model.waivers import TagSet, Waiver, tag_sets, with_tagged
from cisaudit.plugin.options import OptionError

XDIST_WAIVER_TAGS = "cisaudit_waiver_tags"  # workerinput key: [[[key, value], ...], [instance id, ...]] per tag set
RESOLVED_KEY = pytest.StashKey[dict[TagSet, list[str]]]()


def resolve(config: pytest.Config, waivers: dict[str, Waiver], hosts: list[str]) -> dict[str, Waiver]:
    """The waivers with their tag sets resolved; nothing to ask when no waiver has ssm_tags or no
    host is ssm:// (a host that is not ssm:// never matches a tag scope). A failed lookup is a
    usage error: a waiver must never silently not apply."""
    wanted = tag_sets(waivers)
    if not wanted or not any(h.startswith("ssm://") for h in hosts):
        return waivers
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        resolved = {tuple((k, v) for k, v in tags): list(ids) for tags, ids in workerinput[XDIST_WAIVER_TAGS]}
    else:
        resolved = _lookup(config, wanted)
    config.stash[RESOLVED_KEY] = resolved
    return with_tagged(waivers, resolved)


def _lookup(config: pytest.Config, wanted: list[TagSet]) -> dict[TagSet, list[str]]:
    from botocore.exceptions import BotoCoreError, ClientError  # boto3 only for SSM runs

    from cisaudit.host.ssm.backend import instances_tagged

    try:
        return instances_tagged(wanted, config.getoption("ssm_region"), config.getoption("aws_profile"))
    except (BotoCoreError, ClientError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OptionError(
            f"--waivers: cannot resolve scope.ssm_tags (SSM DescribeInstanceInformation): {first}; "
            "check the credentials, --ssm-region and the IAM permission, or scope by instance_ids"
        ) from None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:  # xdist controller: hand workers the resolved ids
    resolved = node.config.stash.get(RESOLVED_KEY, {})
    node.workerinput[XDIST_WAIVER_TAGS] = [[[list(p) for p in tags], ids] for tags, ids in resolved.items()]
