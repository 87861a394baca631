"""cisaudit.model.plan: what --remediate adds, from hand-made Snapshots (pure, no host)."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from cisaudit.model.catalogue import benchmark, controls
from cisaudit.model.evaluate import Assessment
from cisaudit.model.plan import MANAGED_FILE, after_apply, make_plan, with_rules
from cisaudit.model.rules import AuditRule
from cisaudit.model.snapshot import PathInfo
from selftests.snapshots import audited_host

AUGENRULES_UNIT = "[Service]\nExecStartPost=-/sbin/augenrules --load\n"
AUDITCTL_UNIT = "[Service]\nExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules\n"
BASE = ("/etc/audit/rules.d/audit.rules", "-D\n-b 8192\n")
V17 = benchmark("1.7.0")
DOCKER = [c for c in controls() if c.id == "1.1.6"]  # /etc/docker, watch style


def host(files=(), listing="No rules", unit=AUGENRULES_UNIT, audit_rules="", status="enabled 1\n"):
    paths = {p: PathInfo(p, "dir", p) for p in ("/etc", "/etc/docker", "/tmp", "/nonexistent-parent")}
    paths["/nonexistent-parent"] = PathInfo("/nonexistent-parent", "absent", "")
    return audited_host(
        status_text=status,
        listing_text=listing,
        auditd_unit=unit,
        rules_d=[BASE, *files],
        audit_rules=audit_rules,
        paths=paths,
    )


def plan_for(snap):
    return make_plan(Assessment(snap, "docker"), DOCKER, V17)


def test_empty_host_gets_the_benchmark_rule_in_the_managed_file():
    plan = plan_for(host())
    assert (plan.mode, plan.target, plan.rules, plan.left_alone) == (
        "augenrules",
        MANAGED_FILE,
        (("1.1.6", "-w /etc/docker -k docker"),),
        (),
    )


def test_compliant_host_needs_nothing():
    rule = "-w /etc/docker -k docker"
    plan = plan_for(host([("/etc/audit/rules.d/d.rules", rule + "\n")], listing="-w /etc/docker -p rwxa -k docker"))
    assert plan.rules == () and plan.left_alone == ()


@pytest.mark.parametrize(
    ("persisted", "live", "why"),
    [
        (
            "-a never,exit -F path=/etc/docker -F perm=rwxa\n-w /etc/docker -k docker",
            "-w /etc/docker -p rwxa\n-w /etc/docker -p rwxa -k docker",
            "`never` rule",
        ),
        ("-w /etc/docker -k docker", "No rules", "not in the kernel"),
        ("-w /nonexistent-parent/x -k docker\n-w /etc/docker -k docker", "No rules", "never loads"),
    ],
    ids=["never-first", "persisted-not-loaded", "after-broken-line"],
)
def test_rules_the_tool_did_not_write_are_left_alone(persisted, live, why):
    plan = plan_for(host([("/etc/audit/rules.d/60-x.rules", persisted + "\n")], listing=live))
    assert plan.rules == ()
    assert len(plan.left_alone) == 1 and why in plan.left_alone[0][1]


def test_narrow_rule_with_the_key_is_completed_not_replaced():
    plan = plan_for(
        host(
            [("/etc/audit/rules.d/60-x.rules", "-w /etc/docker -p wa -k docker\n")],
            listing="-w /etc/docker -p wa -k docker",
        )
    )
    assert plan.rules == (("1.1.6", "-w /etc/docker -k docker"),)


def test_live_only_rule_gets_persisted():
    plan = plan_for(host(listing="-w /etc/docker -p rwxa -k docker"))
    assert plan.rules == (("1.1.6", "-w /etc/docker -k docker"),)


def test_a_broken_file_sorting_first_means_our_rule_would_never_load():
    plan = plan_for(host([("/etc/audit/rules.d/00-broken.rules", "-w /tmp/x -k a # trailing comment\n")]))
    assert plan.rules == () and "would never load at boot" in plan.left_alone[0][1]


@pytest.mark.parametrize(
    ("audit_rules", "written"),
    [
        ("-D\n-b 8192\n-w /tmp -k t\n-e 2\n", "-D\n-b 8192\nRULE\n-w /tmp -k t\n-e 2\n"),
        ("-D\n-e 2\n", "-D\nRULE\n-e 2\n"),
        ("-D\n", "-D\nRULE\n"),
        (
            "-D\n-w /tmp -k t\n## END cisaudit managed block\n",
            "-D\n-w /tmp -k t\nRULE\n## END cisaudit managed block\n",
        ),
    ],
    ids=["before-the-first-rule", "before-the-e-line", "at-the-end", "in-its-block"],
)
def test_auditctl_mode_writes_audit_rules_first(audit_rules, written):
    """After -D/-b/-f (a -D after them would delete them), before every rule and the -e line."""
    snap = host(unit=AUDITCTL_UNIT, audit_rules=audit_rules)
    plan = plan_for(snap)
    assert (plan.mode, plan.target) == ("auditctl", "/etc/audit/audit.rules")
    rule = "-w /etc/docker -k docker"
    assert with_rules(snap, plan.mode, plan.target, [rule]).audit_rules == written.replace("RULE", rule)


def test_auditd_stopped_is_said_not_blamed_on_the_rules():
    rule = "-w /etc/docker -k docker"
    snap = host([("/etc/audit/rules.d/d.rules", rule + "\n")], listing="-w /etc/docker -p rwxa -k docker")
    snap.auditd_running = False
    plan = plan_for(snap)
    assert plan.rules == () and "auditd is not running" in plan.left_alone[0][1]


def test_rule_goes_on_the_symlink_target():
    snap = host()
    snap.paths["/etc/docker"] = PathInfo("/etc/docker", "symlink", "/srv/docker")
    snap.paths["/srv/docker"] = PathInfo("/srv/docker", "dir", "/srv/docker")
    snap.paths["/srv"] = PathInfo("/srv", "dir", "/srv")
    assert plan_for(snap).rules == (("1.1.6", "-w /srv/docker -k docker"),)


@pytest.mark.parametrize("site_key", ["site", "dockr"])
def test_rule_goes_before_a_site_rule_and_says_whose_accesses_it_takes(site_key):
    """Issue 20.1: placed first, so it passes; the site rule's accesses to /etc/docker now carry
    `docker`, and the plan names the rule and its key."""
    site = ("/etc/audit/rules.d/90-site.rules", f"-w /etc/docker -p wa -k {site_key}\n")
    plan = plan_for(host([site], listing=f"-w /etc/docker -p wa -k {site_key}"))
    assert plan.rules == (("1.1.6", "-w /etc/docker -k docker"),) and plan.left_alone == ()
    assert plan.retagged == (
        f"key {site_key}, from `-w /etc/docker -p wa -k {site_key}` (/etc/audit/rules.d/90-site.rules:1): "
        "write, attribute change of /etc/docker and below (1.1.6)",
    )
    assert "now carry the key 'docker' instead of theirs" in plan.describe()
    assert plan.retagged[0] in plan.describe()


def test_a_site_never_rule_is_not_overridden():
    """A `never` rule the tool did not write is the site's decision not to audit: placing ours
    before it would undo it, so the control is left alone, with that rule named."""
    site = ("/etc/audit/rules.d/90-site.rules", "-a never,exit -F dir=/etc/docker/certs.d\n")
    snap = host([site], listing="-w /etc/docker/certs.d -p rwxa")
    snap.paths["/etc/docker/certs.d"] = PathInfo("/etc/docker/certs.d", "dir", "/etc/docker/certs.d")
    plan = plan_for(snap)
    assert plan.rules == () and "a `never` rule the tool did not write" in plan.left_alone[0][1]


def _run_host():
    snap = host()
    snap.mounts = "tmpfs /run tmpfs rw 0 0\n/dev/vda / ext4 rw 0 0\n"
    snap.auditd_unit = "[Unit]\nAfter=local-fs.target systemd-tmpfiles-setup.service\n" + AUGENRULES_UNIT
    snap.paths.update(
        {
            p: PathInfo(p, k, p, o)
            for p, k, o in [
                ("/run", "dir", "755 0 0"),
                ("/run/containerd", "dir", "711 0 0"),
                ("/run/containerd/containerd.sock", "socket", "660 0 0"),
            ]
        }
    )
    return snap


def test_a_persisted_socket_rule_that_stops_the_boot_load_is_fixed_by_tmpfiles_alone():
    """Issue 9.2: the user's own rules after the containerd.sock line load again at the next boot."""
    controls_ = [c for c in controls() if c.id in ("1.1.6", "1.1.8")]
    snap = _run_host()
    snap.rules_d.append(
        (
            "/etc/audit/rules.d/60-docker.rules",
            "-w /run/containerd/containerd.sock -k docker\n-w /etc/docker -k docker\n",
        )
    )
    snap.rules_d.append(("/etc/audit/rules.d/90-site.rules", "-w /etc/passwd -p wa -k identity\n"))
    snap.listing_text = "-w /run/containerd/containerd.sock -p rwxa -k docker\n-w /etc/docker -p rwxa -k docker"
    before = Assessment(snap, "docker")
    assert before.control_verdict(controls_[1], "persisted").status == "fail"
    assert "at boot /run/containerd does not exist yet" in before.control_verdict(controls_[1], "persisted").summary
    plan = make_plan(before, controls_, V17)
    assert plan.rules == () and plan.tmpfiles == ("d /run/containerd 0711 0 0 -",)
    after = Assessment(with_rules(snap, plan.mode, plan.target, [], list(plan.tmpfiles)), "docker")
    assert [after.control_verdict(c, "persisted").status for c in controls_] == ["pass", "pass"]
    assert "-w /etc/passwd -p wa -k identity" in {l.line.text for l in after.persisted.rules}


def test_socket_under_run_gets_a_tmpfiles_entry():
    """Issue 9.3: /run/containerd is made by containerd after auditd loads the rules at boot."""
    sock = next(c for c in controls() if c.id == "1.1.8")
    snap = _run_host()
    plan = make_plan(Assessment(snap, "docker"), [sock], V17)
    assert plan.rules == (("1.1.8", "-w /run/containerd/containerd.sock -k docker"),)
    assert plan.tmpfiles == ("d /run/containerd 0711 0 0 -",)
    snap.auditd_unit = AUGENRULES_UNIT  # a loader that may run before tmpfiles: nothing can be planned
    assert make_plan(Assessment(snap, "docker"), [sock], V17).rules == ()


def test_a_unit_that_loads_nothing_gets_no_rules():
    plan = plan_for(host(unit="[Service]\nExecStart=/sbin/auditd\n"))
    assert plan.rules == () and "no rules load at boot" in plan.left_alone[0][1]


def test_managed_file_takes_its_place_in_version_order():
    snap = host([("/etc/audit/rules.d/9-a.rules", ""), ("/etc/audit/rules.d/100-z.rules", "")])
    names = [p.rsplit("/", 1)[1] for p, _ in with_rules(snap, "augenrules", MANAGED_FILE, ["-w /x"]).rules_d]
    assert names == ["00-cisaudit-docker.rules", "9-a.rules", "100-z.rules", "audit.rules"]


@pytest.mark.parametrize("root", ["/srv/dock er", "/srv/\x0b-e\x0b2", "/srv/a#b", "/srv/x\ny"])
def test_a_data_root_auditctl_would_split_is_refused(root):
    """Issue 10.8: plan and apply.sh must agree on every byte; a blank would split the rule."""
    data_root = next(c for c in controls() if c.id == "1.1.5")
    snap = host()
    snap.daemon_json = json.dumps({"data-root": root})
    snap.paths[root] = PathInfo(root, "dir", root)
    snap.paths["/srv"] = PathInfo("/srv", "dir", "/srv")
    plan = make_plan(Assessment(snap, "docker"), [data_root], V17)
    assert plan.rules == () and "whitespace, '#' or control characters" in plan.left_alone[0][1]


def test_a_rule_persisted_already_is_not_written_twice():
    """A copy of a persisted rule would stop the boot load at "Rule exists" and lose every later rule."""
    never = "-a never,exit -F path=/etc/docker -F perm=rwxa\n-w /etc/docker -k docker\n-w /etc/x -k site\n"
    snap = host(
        [("/etc/audit/rules.d/60-x.rules", never)],
        listing="-w /etc/docker -p rwxa\n-w /etc/docker -p rwxa -k docker\n-w /etc/x -p rwxa -k site",
    )
    plan = plan_for(snap)
    assert plan.rules == () and "persisted already" in plan.left_alone[0][1]
    assert "(a `never` rule" in plan.left_alone[0][1]


RULESETS = Path(__file__).resolve().parents[1] / "rulesets"
CIS_UBUNTU22 = (RULESETS / "cis-ubuntu22-ansible-lockdown.rules").read_text()
DEBIAN_BASE = "-D\n-b 8192\n-f 1\n--backlog_wait_time 60000\n"
HARDENED = ("1.1.6", "1.1.10", "1.1.14", "1.1.18")


def _hardened_host(extra=()):
    snap = host([("/etc/audit/rules.d/99_auditd.rules", CIS_UBUNTU22), *extra])
    snap.rules_d = [(p, DEBIAN_BASE if p.endswith("/audit.rules") else t) for p, t in snap.rules_d]
    for path, kind in [("/etc/default", "dir"), ("/etc/default/docker", "file"), ("/usr", "dir"), ("/usr/bin", "dir")]:
        snap.paths[path] = PathInfo(path, kind, path)
    for path in ("/usr/bin/containerd", "/usr/sbin/runc"):
        snap.paths[path] = PathInfo(path, "file", path)
    snap.paths["/usr/sbin"] = PathInfo("/usr/sbin", "dir", "/usr/sbin")
    snap.paths["/usr/bin/runc"] = PathInfo("/usr/bin/runc", "symlink", "/usr/sbin/runc")
    return snap


@pytest.mark.parametrize(
    "extra",
    [(), (("/etc/audit/rules.d/10-base-config.rules", "-D\n-b 8192\n-f 1\n--backlog_wait_time 60000\n"),)],
    ids=["cis", "cis+base-config"],
)
def test_a_cis_hardened_host_is_fixed_by_rules_placed_first(extra):
    """Issue 20.1: the CIS Linux benchmark's own rules (selftests/rulesets) take users' chmods and
    failed opens of Docker's files under perm_mod/access. Our rules go in a file that sorts first
    (augenrules moves the -D of 10-base-config to the head, the -e 2 to the end) and are loaded
    at the head of the live list: every control then passes, and the plan names the keys."""
    selected = [c for c in controls() if c.id in HARDENED]
    snap = _hardened_host(extra)
    before = Assessment(snap, "docker")
    assert {before.control_verdict(c, check).status for c in selected for check in ("live", "persisted")} == {"fail"}
    persisted = before.control_verdict(selected[0], "persisted").summary
    assert "-k perm_mod` (/etc/audit/rules.d/99_auditd.rules:" in persisted and "-k access`" in persisted
    plan = make_plan(before, selected, V17)
    assert plan.target == MANAGED_FILE and plan.left_alone == ()
    assert [cid for cid, _ in plan.rules] == list(HARDENED)
    after = Assessment(after_apply(before, plan), "docker")
    assert {after.control_verdict(c, check).status for c in selected for check in ("live", "persisted")} == {"pass"}
    merged = [l.text for l in after.persisted_lines]
    assert (
        merged[0] == "-D"
        and merged[-1] == "-e 2"
        and merged.index(plan.rule_lines[0])
        < merged.index("-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod")
    )
    assert after.persisted.stopped_at is None and len(after.persisted.rules) == len(before.persisted.rules) + 4
    keys = {line.split(",")[0] for line in plan.retagged}
    assert {"key perm_mod", "key access", "key delete", "key user_emulation"} <= keys, plan.retagged
    perm_mod = next(line for line in plan.retagged if line.startswith("key perm_mod,"))
    assert "attribute change of /etc/docker and below (1.1.6); attribute change of /etc/default/docker" in perm_mod
    assert (
        "`-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod` (" in perm_mod
    )
    assert "instead of theirs" in plan.describe() and perm_mod in plan.describe()


def test_a_rule_an_earlier_version_wrote_after_cis_rules_says_how_to_move_it():
    """Runs of earlier versions wrote 50-cisaudit-docker.rules, which sorts after 10-*/30-* hardening
    files: the rule is not copied (Rule exists at boot); the reason says to back that run out."""
    selected = [c for c in controls() if c.id == "1.1.6"]
    old = ("/etc/audit/rules.d/50-cisaudit-docker.rules", "-w /etc/docker -k docker\n")
    snap = _hardened_host((old,))
    snap.rules_d = sorted((p.replace("99_auditd", "30-stig"), t) for p, t in snap.rules_d)
    plan = make_plan(Assessment(snap, "docker"), selected, V17)
    assert plan.rules == ()
    assert "by an earlier cisaudit run: back that run out (--backout)" in plan.left_alone[0][1]


def test_the_plan_is_linear_in_the_hosts_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21.10: the plan compared every persisted rule with every rule of the replayed boot
    (8,000 rules: 123 s of runner CPU). Counted in rule identities, not timed: twice the rules,
    at most a little over twice the work."""
    from bench.replay_scale import host

    calls = 0
    identity = AuditRule.identity

    def counted(rule: AuditRule) -> tuple[object, ...]:
        nonlocal calls
        calls += 1
        return identity.func(rule)  # type: ignore[attr-defined]

    monkeypatch.setattr(AuditRule, "identity", property(counted))
    work = []
    for size in (300, 600):
        snap = host(size)
        own = "".join(c.rule_text(c.path) + "\n" for c in controls() if c.id != "1.1.13")
        snap = replace(snap, rules_d=[(f, t.replace(own, "")) for f, t in snap.rules_d])
        calls = 0
        assert make_plan(Assessment(snap, "docker"), list(controls()), V17).rules
        work.append(calls)
    assert work[1] < 2.5 * work[0], work
