"""cisaudit.model.decisions and cisaudit.model.verdict: the events, remediation and backout verdicts,
and names that fail loudly (pure, hand-made Snapshots and script results)."""

import dataclasses
import json

import pytest

from cisaudit.host.remediation_io import parse_result
from cisaudit.model.catalogue import benchmark, controls
from cisaudit.model.decisions import (
    Accesses,
    Change,
    ChangeStatus,
    RemediationResult,
    Trigger,
    accesses_of,
    backout_verdict,
    events_verdict,
    remediation_verdict,
)
from cisaudit.model.evaluate import Assessment
from cisaudit.model.plan import MANAGED_FILE, Plan
from cisaudit.model.snapshot import PathInfo
from cisaudit.model.verdict import Check, Status, dispatch
from cisaudit.outputs.results import STATUSES
from selftests.snapshots import audited_host
from selftests.suite_runner import REPO

DOCKER_DIR = next(c for c in controls() if c.id == "1.1.6")  # /etc/docker, watch style, rwxa
RULE = "-w /etc/docker -k docker"
PATHS = {p: PathInfo(p, "dir", p, "755 0 0") for p in ("/etc", "/etc/docker")}
LISTED = "-w /etc/docker -p rwxa -k docker"


def assessment(listing: str = LISTED, rules: str = RULE, **over) -> Assessment:
    snap = audited_host(
        listing_text=listing, rules_d=[("/etc/audit/rules.d/docker.rules", rules + "\n")], paths=PATHS, **over
    )
    return Assessment(snap, "docker")


def triggers(events: dict[str, list[str]], path: str = "/etc/docker") -> dict[Trigger, list[str]]:
    return {Trigger(label, 100 + i, path): found for i, (label, found) in enumerate(events.items())}


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["livee", "load-health", "events"])
def test_a_name_that_is_not_a_control_check_raises(name: str) -> None:
    with pytest.raises(ValueError, match="is not a control check"):
        assessment().control_verdict(DOCKER_DIR, name)


@pytest.mark.parametrize("name", ["load_health", "live", ""])
def test_a_name_that_is_not_a_host_check_raises(name: str) -> None:
    with pytest.raises(ValueError, match="is not a host check"):
        assessment().host_verdict(name)


def test_every_host_check_has_its_own_judge() -> None:
    a = assessment()
    summaries = {check: a.host_verdict(check).summary for check in Check if check.name.startswith(("AUDIT", "LOAD"))}
    assert len(set(summaries.values())) == len(summaries)


def test_enum_values_are_what_junit_and_json_carry() -> None:
    schema = json.loads((REPO / "docs" / "results.schema.json").read_text())
    record = schema["properties"]["outcomes"]["items"]["properties"]
    verdicts = record["verdict"]["enum"]
    assert list(Check) == record["check"]["enum"]
    assert set(Status) == set(schema["$defs"]["status"]["enum"]) | set(verdicts)
    assert set(STATUSES) == set(schema["$defs"]["status"]["enum"])
    assert Check("load-health") is Check.LOAD_HEALTH and Check.LIVE == "live"
    with pytest.raises(ValueError, match="known: live"):
        dispatch({Check.LIVE: 1}, "persisted", "test")


# -- --verify-events -----------------------------------------------------------------------


def test_events_pass_when_every_access_was_recorded() -> None:
    a = assessment()
    assert accesses_of(a, DOCKER_DIR) == Accesses("/etc/docker", "rwxa", subtree=True)
    found = triggers({c: [f"arch=c000003e syscall=257 exit=0 ({c})"] for c in "rwxa"})
    verdict = events_verdict(a, DOCKER_DIR, "docker", found)
    assert verdict.status == Status.PASS and len(verdict.evidence) == 4


def test_events_fail_naming_each_access_nothing_recorded() -> None:
    found = triggers({"r": ["arch=c000003e syscall=257 exit=0"], "w": [], "x": [], "a": ["syscall=90"]})
    verdict = events_verdict(assessment(), DOCKER_DIR, "docker", found)
    assert verdict.status == Status.FAIL
    assert "w on /etc/docker, x on /etc/docker" in verdict.summary


def test_events_with_auditd_stopped_fail_before_any_access() -> None:
    """The live check already fails without auditd (no event reaches the log), so no access is judged."""
    verdict = events_verdict(assessment(auditd_running=False), DOCKER_DIR, "docker", triggers({"r": []}))
    assert verdict.status == Status.FAIL and "auditd is not running" in verdict.summary
    assert verdict.evidence == ()


def test_events_without_a_live_rule_fail_as_the_live_check_does() -> None:
    verdict = events_verdict(assessment(listing="No rules"), DOCKER_DIR, "docker", {})
    assert verdict.status == Status.FAIL and verdict.summary.startswith("no live rule to produce events: ")


def test_an_access_another_control_made_counts_once_and_a_recorded_one_wins() -> None:
    found = {Trigger("r", 1, "/etc/docker"): [], Trigger("r", 2, "/etc/docker"): ["syscall=257"]}
    verdict = events_verdict(assessment(), DOCKER_DIR, "docker", found)
    assert verdict.evidence == ("r on /etc/docker (pid 2): syscall=257",)


def test_events_in_a_watched_directory_count_and_a_neighbour_does_not() -> None:
    found = {Trigger("r", 1, "/etc/docker/daemon.json"): ["syscall=257"], Trigger("r", 2, "/etc/dockerx"): []}
    verdict = events_verdict(assessment(), DOCKER_DIR, "docker", found)
    assert verdict.status == Status.PASS and "pid 2" not in "".join(verdict.evidence)


def test_a_refused_access_is_an_error_not_a_fail() -> None:
    """A path another user could redirect is not accessed, and the verdict says so."""
    found = {Trigger("refused", 0, "/etc/docker"): [], Trigger("r", 2, "/etc/docker/x"): ["syscall=257"]}
    verdict = events_verdict(assessment(), DOCKER_DIR, "docker", found)
    assert verdict.status == Status.ERROR and verdict.summary.startswith("not accessed: /etc/docker is missing, or")


# -- --remediate ---------------------------------------------------------------------------

PLAN = Plan("augenrules", MANAGED_FILE, (("1.1.6", RULE),), ())


def result(status: ChangeStatus, **over) -> RemediationResult:
    return RemediationResult(status=status, run_id="r1", **over)


def test_remediation_passes_when_the_reprobed_host_passes_both_checks() -> None:
    change = Change(PLAN, result(ChangeStatus.APPLIED, added=[RULE]))
    verdict = remediation_verdict(change, assessment(), "1.7.0")
    assert verdict.status == Status.PASS and verdict.summary.startswith("run r1: added 1; ")
    assert change.remediated("1.1.6") and not change.remediated("1.1.7")
    assert change.summary() == "applied run r1: applied, 1 rule(s) added"


def test_remediation_fails_when_a_remediated_control_still_fails() -> None:
    verdict = remediation_verdict(Change(PLAN, result(ChangeStatus.APPLIED)), assessment(listing="No rules"), "1.7.0")
    assert verdict.status == Status.FAIL and verdict.summary.endswith(": 1.1.6")


@pytest.mark.parametrize(
    ("status", "want", "start"),
    [
        (ChangeStatus.DRY_RUN, Status.PASS, "dry run, nothing changed; the plan: "),
        (ChangeStatus.REBOOT_REQUIRED, Status.FAIL, "reboot required: "),
        (ChangeStatus.FAILED, Status.FAIL, "remediation failed (run r1)"),
        (ChangeStatus.UNKNOWN, Status.FAIL, "remediation unknown"),
    ],
)
def test_remediation_statuses(status: ChangeStatus, want: Status, start: str) -> None:
    change = Change(PLAN, result(status))
    verdict = remediation_verdict(change, assessment(listing="No rules"), "1.7.0")
    assert verdict.status == want and verdict.summary.startswith(start)
    assert not change.remediated("1.1.6") or status == ChangeStatus.REBOOT_REQUIRED


def test_dry_run_says_what_it_would_add_in_clean_text() -> None:
    """A dry run's summary reads as one: no "applied run ...: dry-run", no "would CIS Docker Benchmark v1.7.0: add"."""
    tmpfiles = "d /run/containerd 0711 0 0 -"
    added = [RULE, f"tmpfiles.d: {tmpfiles}"]
    plan = dataclasses.replace(PLAN, benchmark=benchmark("1.7.0"))
    change = Change(plan, result(ChangeStatus.DRY_RUN, added=added, fields={"target": PLAN.target}))
    assert change.summary() == (
        f"dry run, nothing changed: would add 1 rule(s) to {PLAN.target}: {RULE}; would write tmpfiles.d: {tmpfiles}"
    )
    verdict = remediation_verdict(change, assessment(listing="No rules"), "1.7.0")
    assert verdict.summary == (
        f"dry run, nothing changed; the plan: CIS Docker Benchmark v1.7.0: add to {PLAN.target} (augenrules) "
        f"and load: 1.1.6: {RULE}; placed first: the file sorts before every other /etc/audit/rules.d file "
        "and loaded live at the head of the kernel's exit list (auditctl -A), before every rule the tool did not write"
    )
    assert f"would add: {RULE}" in verdict.evidence


@pytest.mark.parametrize("status", [ChangeStatus.APPLIED, ChangeStatus.REBOOT_REQUIRED, ChangeStatus.DRY_RUN])
def test_remediation_says_which_site_rules_now_give_their_accesses_the_key(status: ChangeStatus) -> None:
    """Placed first, the rules take accesses a site rule recorded under its own key."""
    retag = "key perm_mod, from `-a always,exit -S chmod -k perm_mod` (/etc/audit/rules.d/99.rules:1): ..."
    plan = Plan("augenrules", PLAN.target, PLAN.rules, (), retagged=(retag,))
    verdict = remediation_verdict(Change(plan, result(status, added=[RULE])), assessment(), "1.7.0")
    assert f"now carry 'docker' instead (the rules go first): {retag}" in verdict.evidence
    if status != ChangeStatus.REBOOT_REQUIRED:
        assert retag in verdict.summary and "instead of theirs" in verdict.summary


def test_nothing_to_change_passes_with_what_was_left_alone() -> None:
    plan = Plan("augenrules", PLAN.target, (), (("1.1.7", "a site rule takes its accesses"),))
    verdict = remediation_verdict(Change(plan), assessment(), "1.7.0")
    assert verdict.status == Status.PASS and verdict.evidence == ("left alone 1.1.7: a site rule takes its accesses",)


# -- --backout -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "want"),
    [
        (ChangeStatus.RESTORED, Status.PASS),
        (ChangeStatus.NOTHING_TO_DO, Status.PASS),
        (ChangeStatus.DRY_RUN, Status.PASS),
        (ChangeStatus.MISMATCH, Status.FAIL),
        (ChangeStatus.REFUSED, Status.FAIL),
        (ChangeStatus.REBOOT_REQUIRED, Status.FAIL),
        (ChangeStatus.UNKNOWN, Status.FAIL),
    ],
)
def test_backout_statuses(status: ChangeStatus, want: Status) -> None:
    verdict = backout_verdict(result(status, mismatches=["/etc/x differs"]))
    assert verdict.status == want and "mismatch: /etc/x differs" in verdict.evidence


def test_a_status_the_script_never_prints_is_unknown_and_said() -> None:
    parsed = parse_result("cisaudit-result: status=pwned run_id=r1\n")
    assert parsed.status == ChangeStatus.UNKNOWN and not parsed.ok
    assert parsed.messages == ["result status 'pwned' is not one this version knows"]
    assert parse_result("cisaudit-result: status=restored run_id=-\n").status is ChangeStatus.RESTORED
