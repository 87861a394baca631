"""--shard K/N (cisaudit/model/shard.py): a stable share, every host in exactly one shard, and the
checks the merge makes on the shards it is given."""

from __future__ import annotations

import random

import pytest

from cisaudit.model.shard import FleetShape, Shard, fleet_shape, incomplete, shard_of, without_shard
from cisaudit.plugin.options import OptionError, shard


def test_every_host_is_in_exactly_one_shard_whatever_the_order() -> None:
    hosts = [f"ssm://i-{n:017x}" for n in range(2000)] + ["local://", "ssh://root@web1", "paramiko://[::1]:22"]
    shards = [Shard(k, 8) for k in range(1, 9)]
    shuffled = random.Random(1).sample(hosts, len(hosts))
    shares = [s.hosts(hosts) for s in shards]
    assert sorted(h for share in shares for h in share) == sorted(hosts)
    assert [sorted(s.hosts(shuffled)) for s in shards] == [sorted(share) for share in shares]
    assert all(200 <= len(share) <= 300 for share in shares), [len(s) for s in shares]


def test_a_host_keeps_its_shard_when_the_fleet_changes() -> None:
    assert shard_of("ssm://i-0123456789abcdef0", 8) == shard_of("ssm://i-0123456789abcdef0", 8)
    assert Shard(1, 1).hosts(["a", "b"]) == ["a", "b"]
    instances = ["i-0123456789abcdef0", "i-00000000000000001"]
    assert Shard(3, 4).instances(instances) == [i for i in instances if Shard(3, 4).owns(f"ssm://{i}")]


def test_a_tag_goes_by_tag_only_when_the_shard_has_all_its_instances() -> None:
    ids = [f"i-{n:017x}" for n in range(40)]
    mine = Shard(1, 2)
    tags = {("Role", "all"): ids, ("Role", "mine"): mine.instances(ids), ("Role", "none"): []}
    assert set(mine.whole_tags(tags)) == {("Role", "mine"), ("Role", "none")}


@pytest.mark.parametrize("text", ["0/8", "9/8", "1/0", "x", "1/", "/8", "1-8", "", "-1/8"])
def test_a_bad_shard_is_one_line_that_says_what_to_give(text: str) -> None:
    with pytest.raises(OptionError, match=r"^--shard: .*give e\.g\. \d/\d") as caught:
        shard(text)
    assert "\n" not in str(caught.value)


def test_shard_parses_k_of_n() -> None:
    assert shard("2/8") == Shard(2, 8) and str(Shard(2, 8)) == "2/8"
    assert shard(None) is None


def test_without_shard_drops_the_option_in_both_spellings() -> None:
    assert without_shard(["-q", "--shard", "2/8", "--hosts=a"]) == (["-q", "--hosts=a"], Shard(2, 8))
    assert without_shard(["--shard=3/8"]) == ([], Shard(3, 8))
    assert without_shard(["-q"]) == (["-q"], None)


def test_incomplete_names_the_missing_doubled_or_foreign_shard() -> None:
    assert incomplete([Shard(2, 3), Shard(1, 3), Shard(3, 3)]) is None
    assert incomplete([Shard(1, 3), Shard(3, 3)]) == "shard 2/3 missing: give every shard's results.json"
    assert incomplete([Shard(1, 2), Shard(1, 2), Shard(2, 2)]) == "shard 1/2 is given twice"
    assert "different numbers of shards: 2, 3" in (incomplete([Shard(1, 2), Shard(1, 3)]) or "")
    assert "without --shard" in (incomplete([Shard(1, 1), None]) or "")


def test_fleet_shape_reads_aggregate_above_and_fleet_reports_in_both_spellings() -> None:
    assert fleet_shape(["--hosts=a"], 200) == FleetShape(200, False)
    assert fleet_shape(["--aggregate-above=0", "--fleet-reports"], 200) == FleetShape(0, True)
    assert fleet_shape(["--aggregate-above", "5", "--aggregate-above=7"], 200) == FleetShape(7, False)  # the last


def test_fleet_shape_is_compact_above_the_threshold_without_fleet_reports() -> None:
    assert FleetShape(200, False).compact(201) and not FleetShape(200, False).compact(200)
    assert not FleetShape(0, True).compact(100_000)


@pytest.mark.parametrize("args", [["--aggregate-above=x"], ["--aggregate-above"], ["--aggregate-above=-1"]])
def test_fleet_shape_refuses_a_value_that_is_no_host_count(args: list[str]) -> None:
    with pytest.raises(ValueError, match="is not a number of hosts"):
        fleet_shape(args, 200)
