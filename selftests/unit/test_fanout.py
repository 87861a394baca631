"""The fan-out plan (cisaudit/host/ssm/fanout.py) and the spool the host sessions read (spool.py)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from cisaudit.host.ssm import fanout
from cisaudit.host.ssm.spool import Spool, SpoolError

IDS = [f"i-{n:017x}" for n in range(1, 121)]


def test_a_tag_is_one_command_and_the_other_ids_go_50_a_command() -> None:
    tags = {("Role", "docker"): IDS[:10], ("Env", "prod"): IDS[5:15]}
    batches = fanout.plan_batches(IDS, tags)
    assert [b.tag for b in batches] == [("Role", "docker"), ("Env", "prod"), None, None, None]
    assert batches[0].members == tuple(IDS[:10])
    assert batches[1].members == tuple(IDS[10:15])  # IDS[5:10] are the first tag's already
    assert [len(b.members) for b in batches[2:]] == [50, 50, 5]
    assert sorted(i for b in batches for i in b.members) == IDS  # every instance once
    assert batches[0].target() == {"Targets": [{"Key": "tag:Role", "Values": ["docker"]}]}
    assert batches[2].target() == {"InstanceIds": IDS[15:65]}


def test_a_tag_with_no_instance_of_ours_sends_nothing() -> None:
    assert fanout.plan_batches(IDS[:2], {("Role", "web"): ["i-0fffffffffffffff0"]}) == [fanout.Batch(tuple(IDS[:2]))]


def test_send_params_keep_the_rollout_going_and_write_to_s3() -> None:
    params = fanout.send_params(fanout.Batch(("i-1",), ("Role", "docker")), "true", "bkt", "pre", "10%", 600, 300)
    assert params == {
        "Targets": [{"Key": "tag:Role", "Values": ["docker"]}],
        "DocumentName": "AWS-RunShellScript",
        "TimeoutSeconds": 600,
        "MaxConcurrency": "10%",
        "MaxErrors": "100%",
        "Parameters": {"commands": ["true"], "executionTimeout": ["300"]},
        "OutputS3BucketName": "bkt",
        "OutputS3KeyPrefix": "pre",
    }


@pytest.mark.parametrize(("text", "expected"), [("50", "50"), (" 7 ", "7"), ("10%", "10%"), ("100%", "100%")])
def test_concurrency_is_a_count_or_a_percentage(text: str, expected: str) -> None:
    assert fanout.parse_concurrency(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "101%", "ten", "5.5", "", "10000000"])
def test_other_concurrency_values_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a number"):
        fanout.parse_concurrency(text)


def test_rounds_and_delivery_timeout_cover_the_whole_rollout() -> None:
    assert fanout.waves(10_000, "50") == 200
    assert fanout.waves(10_000, "10%") == 10
    assert fanout.waves(3, "1%") == 3  # at least one at a time
    assert fanout.delivery_timeout(60, 300, 1) == 60
    assert fanout.delivery_timeout(10, 300, 1) == 30  # the API's minimum
    assert fanout.delivery_timeout(60, 300, 200) == 60 + 199 * 300
    assert fanout.delivery_timeout(60, 300, 10**6) == fanout.MAX_DELIVERY_TIMEOUT


def test_only_an_instances_stdout_object_names_it() -> None:
    prefix = fanout.command_prefix("cisaudit-ssm", "cmd-1")
    key = f"{prefix}i-0123456789abcdef0/awsrunShellScript/0.awsrunShellScript/stdout"
    assert fanout.instance_of_key(key, prefix) == "i-0123456789abcdef0"
    assert fanout.instance_of_key(key.replace("stdout", "stderr"), prefix) is None
    assert fanout.instance_of_key(key.replace("cmd-1", "cmd-2"), prefix) is None
    assert fanout.instance_of_key(f"{prefix}stdout", prefix) is None
    # Issue 21.5: any other key another instance may write under the victim's id is not its stdout
    for made_up in ("0/stdout", "x/awsrunShellScript/0.awsrunShellScript/stdout", "awsrunShellScript/stdout"):
        assert fanout.instance_of_key(f"{prefix}i-0123456789abcdef0/{made_up}", prefix) is None


def test_reported_output_is_the_services_own_head_of_stdout() -> None:
    inv = {"CommandPlugins": [{"Output": "CISAUDIT-SSM1 n 4 /tmp/d " + "0" * 64}], "StandardOutputContent": "x"}
    assert fanout.reported_output(inv).startswith("CISAUDIT-SSM1 n 4")
    assert fanout.reported_output({"StandardOutputContent": "y"}) == "y" and fanout.reported_output({}) == ""


@pytest.mark.parametrize(
    ("status", "details", "problem"),
    [
        ("Success", "Success", False),
        ("Failed", "Failed", False),  # the script ran to its end; its exit code is in the frame
        ("Failed", "Undeliverable", True),
        ("TimedOut", "Execution Timed Out", True),
        ("TimedOut", "DeliveryTimedOut", True),
        ("Cancelled", "Cancelled", True),
    ],
)
def test_a_finished_invocation_is_usable_only_if_its_script_ran_to_its_end(
    status: str, details: str, problem: bool
) -> None:
    inv = {"Status": status, "StatusDetails": details}
    assert fanout.terminal(inv)
    assert (fanout.invocation_problem(inv) is not None) == problem


def test_running_invocations_are_not_terminal() -> None:
    assert not any(fanout.terminal({"Status": s}) for s in ("Pending", "InProgress", "Delayed", "Cancelling"))


def test_stdout_url_from_the_invocation_or_its_plugin() -> None:
    assert fanout.stdout_url({"StandardOutputUrl": "u1", "CommandPlugins": [{"StandardOutputUrl": "u2"}]}) == "u1"
    assert fanout.stdout_url({"StandardOutputUrl": "", "CommandPlugins": [{"StandardOutputUrl": "u2"}]}) == "u2"
    assert fanout.stdout_url({}) == ""


def test_spool_gives_back_results_and_errors(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.set_nonce("@@cisaudit-0123456789abcdef")
    spool.put_result("i-1", 3, b"out\xff", b"err")
    spool.publish("i-1")
    spool.put_error("i-2", "ssm://i-2 command c: command did not complete (Status=Failed, StatusDetails=Undeliverable)")
    spool.finish()
    assert spool.nonce == "@@cisaudit-0123456789abcdef"
    assert spool.take("i-1") == (3, "out\ufffd", "err")
    with pytest.raises(SpoolError, match="Undeliverable"):
        spool.take("i-2")
    with pytest.raises(SpoolError, match="ssm://i-3: no result from the fleet probe"):
        spool.take("i-3")


def test_a_session_waits_for_a_result_until_the_service_bound_it(tmp_path: Path) -> None:
    """The fan-out runs beside the tests: a result read from S3 is not the session's until the
    service's report binds it (`publish`); an error replaces it; the end of the fan-out ends the wait."""
    spool = Spool(tmp_path)
    spool.put_result("i-1", 0, b"unbound", b"")
    spool.put_result("i-2", 0, b"another writer's", b"")
    spool.put_error("i-2", "ssm://i-2: not the output SSM reports for it")
    taken: list[object] = []
    reader = threading.Thread(target=lambda: taken.append(spool.take("i-1")))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and not taken  # not published yet
    spool.publish("i-1")
    reader.join(5)
    assert taken == [(0, "unbound", "")]
    spool.finish()
    with pytest.raises(SpoolError, match="not the output SSM reports"):
        spool.take("i-2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done", "i-1.json", "i-2.json"]


def test_the_default_concurrency_is_a_value_the_api_takes_and_rolls_10000_out_in_20_rounds() -> None:
    import botocore.session

    shape = botocore.session.get_session().get_service_model("ssm").shape_for("MaxConcurrency")
    assert re.fullmatch(shape.metadata["pattern"], fanout.DEFAULT_MAX_CONCURRENCY)
    assert fanout.parse_concurrency("9999999") == "9999999"  # the model's longest
    assert fanout.waves(10_000, fanout.DEFAULT_MAX_CONCURRENCY) == 20


def test_streamed_ids_go_50_to_a_command_and_the_rest_at_close(tmp_path: Path) -> None:
    """A --shard's instances, streamed as the listing pages (plugin/fleet_audit.py): a command as
    soon as 50 are in, the rest once nothing more comes, each id once and watched."""
    from cisaudit.host.ssm.fleet import FleetOptions, FleetProbe

    fleet = FleetProbe(FleetOptions("bucket", "us-east-1"), Spool(tmp_path), "true")
    fleet.stream(IDS[:70])
    fleet.stream(IDS[70:120])
    assert [b.members for b in fleet._take_batches()] == [tuple(IDS[:50]), tuple(IDS[50:100])]
    assert fleet._take_batches() == []
    fleet.close()
    assert [b.members for b in fleet._take_batches()] == [tuple(IDS[100:120])]
    assert fleet.watched() == sorted(IDS[:120]) and all(b.tag is None for b in fleet._take_batches())
