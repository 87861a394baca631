"""Benchmark versions as data (cisaudit/model/benchmarks/*.toml) and what v1.8.0 changes: the data-root's
exclusions judged by the kernel's first-match order, the docker socket by ListenStream (docs/benchmarks.md)."""

import json
import re

import pytest

from cisaudit.host.probe import render_probe
from cisaudit.model.catalogue import (
    BENCHMARKS,
    DEFAULT_VERSION,
    VERSIONS,
    AssessmentStatus,
    benchmark,
    check_version,
    controls,
    select,
    version_key,
)
from cisaudit.model.evaluate import Assessment
from cisaudit.model.locate import resolve, unknown_paths
from cisaudit.model.plan import MANAGED_FILE, make_plan
from cisaudit.model.snapshot import PathInfo
from cisaudit.model.verdict import Status
from selftests.snapshots import audited_host

V18 = {c.id: c for c in controls("1.8.0")}
UNIT = "[Service]\nExecStartPost=-/sbin/augenrules --load\n"
ROOT = "/var/lib/docker"
NEVER_VOLUMES = f"-a exit,never -F dir={ROOT}/volumes"
NEVER_OVERLAY = f"-a exit,never -F dir={ROOT}/overlay2"
INODE = f"-a exit,always -F path={ROOT} -F perm=war -k docker"
TREE = f"-w {ROOT} -k docker"
# How this machine's auditctl 3.0.9 lists each rule (measured with the kernel sandbox).
LISTED = {
    NEVER_VOLUMES: f"-a never,exit -S all -F dir={ROOT}/volumes",
    NEVER_OVERLAY: f"-a never,exit -S all -F dir={ROOT}/overlay2",
    INODE: f"-w {ROOT} -p rwa -k docker",
    TREE: f"-w {ROOT} -p rwxa -k docker",
}


def test_both_versions_load_with_level_and_assessment_per_control():
    table = {v: {c.id: (c.level, c.assessment) for c in controls(v)} for v in ("1.7.0", "1.8.0")}
    auto, manual = AssessmentStatus.AUTOMATED, AssessmentStatus.MANUAL
    level1 = {"1.1.3", "1.1.4", "1.1.5", "1.1.6"}
    assert table["1.7.0"] == {f"1.1.{n}": (1 if f"1.1.{n}" in level1 else 2, auto) for n in range(3, 19)}
    assert table["1.8.0"] == {**table["1.7.0"], "1.1.4": (1, manual), "1.1.5": (1, manual)}
    assert [benchmark(v).version for v in ("1.7.0", "1.8.0")] == ["1.7.0", "1.8.0"]


def test_only_the_issue_s_controls_differ_between_versions():
    old = {c.id: c for c in controls("1.7.0")}
    changed = {cid for cid, c in V18.items() if c != old[cid]}
    assert changed == {"1.1.4", "1.1.5", "1.1.9"}
    assert V18["1.1.5"].exclude == ("volumes", "overlay2") and old["1.1.5"].exclude == ()
    assert (V18["1.1.9"].path, V18["1.1.9"].locate) == ("/var/run/docker.sock", "socket:docker.socket")
    assert (old["1.1.9"].path, old["1.1.9"].locate) == ("/lib/systemd/system/docker.socket", "unit:docker.socket")


def test_selection_is_per_version_and_an_unknown_version_is_refused():
    assert [c.id for c in select("1.1.9", "1.8.0")] == ["1.1.9"]
    assert select("1.1.9", "1.8.0")[0].title.endswith("docker.sock")
    for unknown in ("1.6.0", "1.8", "../1.7.0"):  # no catalogue file of that name
        with pytest.raises(ValueError, match=f"unknown benchmark version '{re.escape(unknown)}'"):
            check_version(unknown)
        with pytest.raises(ValueError, match="unknown benchmark version"):
            controls(unknown)


def test_the_versions_are_the_catalogue_files():
    """Adding benchmarks/1.9.0.toml is the whole of adding v1.9 (docs/architecture.md, recipes)."""
    assert tuple(sorted((p.stem for p in BENCHMARKS.glob("*.toml")), key=version_key)) == VERSIONS
    assert list(VERSIONS) == sorted(VERSIONS, key=version_key) and DEFAULT_VERSION in VERSIONS


def test_the_probe_asks_for_the_socket_unit_and_the_exclusions_only_in_1_8_0():
    v17, _ = render_probe(controls("1.7.0"))
    v18, _ = render_probe(controls("1.8.0"))
    assert "SOCKETS=''\nEXCLUDES=''" in v17
    assert "SOCKETS=docker.socket\nEXCLUDES='overlay2 volumes'" in v18


def host(persisted=(), listing=None, daemon_json=None, dirs=(f"{ROOT}/volumes", f"{ROOT}/overlay2"), **over):
    """A Debian-like host whose rules.d holds `persisted` and whose kernel lists them (or `listing`)."""
    paths = {p: PathInfo(p, "dir", p, "755 0 0") for p in ("/var", "/var/lib", ROOT, *dirs)}
    for sub in ("volumes", "overlay2"):
        paths.setdefault(f"{ROOT}/{sub}", PathInfo(f"{ROOT}/{sub}", "absent", f"{ROOT}/{sub}"))
    if listing is None:
        listing = "\n".join(LISTED[r] for r in persisted) or "No rules"
    fields = dict(
        listing_text=listing,
        auditd_unit=UNIT,
        rules_d=[("/etc/audit/rules.d/60-site.rules", "".join(r + "\n" for r in persisted))],
        daemon_json=daemon_json,
        paths=paths,
    )
    return audited_host(**{**fields, **over})


def verdicts(snap):
    a = Assessment(snap, "docker")
    return {check: a.control_verdict(V18["1.1.5"], check) for check in ("live", "persisted")}


@pytest.mark.parametrize(
    ("rules", "expected", "why"),
    [
        ((NEVER_VOLUMES, NEVER_OVERLAY, TREE), Status.PASS, "excludes /var/lib/docker/volumes"),
        ((TREE, NEVER_VOLUMES, NEVER_OVERLAY), Status.FAIL, "are recorded with the key by `-w /var/lib/docker -"),
        ((INODE, NEVER_VOLUMES, NEVER_OVERLAY), Status.PASS, "excludes /var/lib/docker/volumes"),
        ((INODE,), Status.PASS, "no rule records accesses below /var/lib/docker/volumes with the key"),
        ((TREE,), Status.FAIL, "place `-a exit,never -F dir=/var/lib/docker/volumes` before it"),
        ((NEVER_VOLUMES, TREE), Status.FAIL, "below /var/lib/docker/overlay2, which the benchmark excludes"),
        ((NEVER_VOLUMES, NEVER_OVERLAY), Status.FAIL, "no rule records with the key"),
    ],
    ids=[
        "exclusions-first",
        "exclusions-after-the-watch",
        "benchmark-text-order",
        "inode-rule-only",
        "tree-watch-no-exclusions",
        "one-exclusion-missing",
        "exclusions-only",
    ],
)
def test_1_1_5_exclusions_are_judged_in_first_match_order(rules, expected, why):
    result = verdicts(host(rules))
    assert {c: v.status for c, v in result.items()} == {"live": expected, "persisted": expected}
    assert all(why in v.summary for v in result.values()), result["live"].summary


def test_an_absent_subdirectory_needs_no_exclusion():
    result = verdicts(host((TREE,), dirs=()))
    assert (
        result["live"].status == Status.PASS and "volumes does not exist: nothing to exclude" in result["live"].summary
    )


@pytest.mark.parametrize(
    ("daemon_json", "args", "subuid", "root", "excluded"),
    [
        (None, [], None, ROOT, ROOT),
        ({"data-root": "/srv/docker"}, [], None, "/srv/docker", "/srv/docker"),
        (None, ["/usr/sbin/dockerd", "--data-root", "/data/d", "-H", "fd://"], None, "/data/d", "/data/d"),
        (None, ["/usr/sbin/dockerd", "--data-root=/data/d"], None, "/data/d", "/data/d"),
        ({"userns-remap": "default"}, [], "root:100000:65536\ndockremap:165536:65536\n", ROOT, f"{ROOT}/165536.165536"),
        (
            {"data-root": "/srv/d", "userns-remap": "ops:ops"},
            [],
            "ops:200000:65536\n",
            "/srv/d",
            "/srv/d/200000.200000",
        ),
        (
            None,
            ["/usr/sbin/dockerd", "--userns-remap=default"],
            "dockremap:231072:65536\n",
            ROOT,
            f"{ROOT}/231072.231072",
        ),
    ],
    ids=["default", "daemon-json", "flag", "flag-equals", "remap-default", "remap-user-group", "remap-flag"],
)
def test_data_root_and_userns_remap_are_derived(daemon_json, args, subuid, root, excluded):
    snap = host(
        daemon_json=json.dumps(daemon_json) if daemon_json else None, dockerd_args=args, subuid=subuid, subgid=subuid
    )
    target = resolve(V18["1.1.5"], snap)
    assert target.path == root and target.problems == ()
    assert target.exclusions == (f"{excluded}/volumes", f"{excluded}/overlay2")


def test_a_remap_user_without_a_range_is_a_stated_problem_and_unknown_paths_are_stat_ed_next():
    snap = host(daemon_json=json.dumps({"userns-remap": "default"}), subuid="", subgid="")
    target = resolve(V18["1.1.5"], snap)
    assert "no range for it in /etc/subuid" in target.problems[0]
    remapped = host(
        daemon_json=json.dumps({"userns-remap": "default"}), subuid="dockremap:1:2\n", subgid="dockremap:1:2\n"
    )
    assert unknown_paths([resolve(V18["1.1.5"], remapped)]) == [f"{ROOT}/1.1/overlay2", f"{ROOT}/1.1/volumes"]


@pytest.mark.parametrize(
    ("unit", "path"),
    [
        ("[Socket]\nListenStream=/run/docker.sock\nSocketMode=0660\n", "/run/docker.sock"),
        (
            "[Socket]\nListenStream=/run/docker.sock\n# /etc/systemd/system/docker.socket.d/x.conf\n[Socket]\n"
            "ListenStream=\nListenStream=/srv/docker.sock\n",
            "/srv/docker.sock",
        ),
        ("[Socket]\nListenStream=2375\n", "/var/run/docker.sock"),
        ("", "/var/run/docker.sock"),
    ],
    ids=["debian", "drop-in-resets", "tcp-only", "no-unit"],
)
def test_1_1_9_audits_the_listen_stream_of_docker_socket(unit, path):
    snap = host(socket_units={"docker.socket": unit} if unit else {})
    target = resolve(V18["1.1.9"], snap)
    assert target.path == path
    assert ("ListenStream= of docker.socket" if path != "/var/run/docker.sock" else "default") in target.how


def test_the_plan_writes_the_exclusions_before_the_data_root_rule():
    plan = make_plan(Assessment(host(), "docker"), [V18["1.1.5"]], benchmark("1.8.0"))
    assert plan.target == MANAGED_FILE and plan.left_alone == ()
    assert plan.rule_lines == [NEVER_VOLUMES, NEVER_OVERLAY, INODE]
    assert plan.describe().startswith("CIS Docker Benchmark v1.8.0: add to ")


def test_the_plan_adds_only_missing_exclusions_and_never_a_copy():
    plan = make_plan(Assessment(host((NEVER_VOLUMES,)), "docker"), [V18["1.1.5"]], benchmark("1.8.0"))
    assert plan.rule_lines == [NEVER_OVERLAY, INODE]


def test_an_exclusion_that_would_come_after_a_site_watch_is_left_alone():
    """00-base.rules sorts before the managed file: after its tree watch the exclusion would do nothing."""
    snap = host(rules_d=[("/etc/audit/rules.d/00-base.rules", TREE + "\n")], listing=LISTED[TREE])
    plan = make_plan(Assessment(snap, "docker"), [V18["1.1.5"]], benchmark("1.8.0"))
    assert plan.rules == () and "keeps it failing" in plan.left_alone[0][1]
    assert "place `-a exit,never -F dir=/var/lib/docker/volumes` before it" in plan.left_alone[0][1]


@pytest.mark.parametrize("key", ["site", "docker"])
def test_an_exclusion_never_narrows_a_later_site_rule(key):
    """Nothing lost: our `never` before 90-site.rules' watch would take the events it records now."""
    snap = host(
        rules_d=[("/etc/audit/rules.d/90-site.rules", f"-w {ROOT} -k {key}\n")], listing=f"-w {ROOT} -p rwxa -k {key}"
    )
    plan = make_plan(Assessment(snap, "docker"), [V18["1.1.5"]], benchmark("1.8.0"))
    assert plan.rules == () and f"would stop `-w /var/lib/docker -k {key}`" in plan.left_alone[0][1]
