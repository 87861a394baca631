"""Issue 21.6: a data-root on its own mount. A `-F path=` rule on a mount point binds the
directory the mount hides and never records (measured: selftests/e2e/test_mount_point_rules.py);
the model must say FAIL, live and persisted, and say why; a tree watch on it records."""

from __future__ import annotations

from cisaudit.model.catalogue import benchmark, controls
from cisaudit.model.evaluate import Assessment
from cisaudit.model.verdict import Check, Status
from selftests.unit.test_evaluate import good_listing, good_rules, host

DATA_ROOT_MOUNT = "/dev/vdb /var/lib/docker ext4 rw,relatime 0 0\n"
C115 = next(c for c in controls() if c.id == "1.1.5")


def verdict(snap, check):
    return Assessment(snap, "docker").control_verdict(C115, check)


def test_the_benchmarks_path_rule_on_a_mounted_data_root_records_nothing() -> None:
    assert "-F path=/var/lib/docker" in good_rules()
    plain = host(good_rules(), good_listing())
    assert {verdict(plain, c).status for c in (Check.LIVE, Check.PERSISTED)} == {Status.PASS}
    mounted = host(good_rules(), good_listing(), mounts=DATA_ROOT_MOUNT)
    for check in (Check.LIVE, Check.PERSISTED):
        got = verdict(mounted, check)
        assert got.status == Status.FAIL, (check, got)
        assert any("is a mount point (ext4): a -F path= rule on it binds the directory" in e for e in got.evidence)
    others = {c.id for c in controls() if c.id != "1.1.5"}
    a, b = Assessment(plain, "docker"), Assessment(mounted, "docker")
    for c in (c for c in controls() if c.id in others):
        assert a.control_verdict(c, Check.LIVE).status == b.control_verdict(c, Check.LIVE).status, c.id


def test_a_tree_watch_on_the_mounted_data_root_records() -> None:
    rules = good_rules().replace(
        "-a exit,always -F path=/var/lib/docker -F perm=war -k docker", "-w /var/lib/docker -p war -k docker"
    )
    mounted = host(rules, good_listing(), mounts=DATA_ROOT_MOUNT)
    assert verdict(mounted, Check.PERSISTED).status == Status.PASS


def test_remediation_of_a_mounted_data_root_writes_a_tree_watch_that_records() -> None:
    from cisaudit.model.plan import make_plan

    mounted = host(good_rules().replace("-a exit,always -F path=/var/lib/docker -F perm=war -k docker", ""), "",
                   mounts=DATA_ROOT_MOUNT)  # fmt: skip
    plan = make_plan(Assessment(mounted, "docker"), [C115], benchmark("1.7.0"))
    assert "-w /var/lib/docker -p rwa -k docker" in plan.rule_lines and not plan.left_alone, plan
    assert not any("path=/var/lib/docker" in line for line in plan.rule_lines)
    plain = host(good_rules().replace("-a exit,always -F path=/var/lib/docker -F perm=war -k docker", ""), "")
    assert (
        "-a exit,always -F path=/var/lib/docker -F perm=war -k docker"
        in make_plan(Assessment(plain, "docker"), [C115], benchmark("1.7.0")).rule_lines
    )


def _kernel_list(listing: str, snap) -> list[tuple[str, str, str, str]]:
    """The probe's kernel-rules section for good_listing(): the benchmark's `-w` rules (perms rwxa)
    on directories are dir= rules, its `-F path=` rules (perms rwa) path= rules."""
    rules = []
    for line in listing.splitlines():
        _, path, _, perms, *_ = line.split()
        info = snap.paths.get(path)
        rules.append(("exit", "always", "dir" if perms == "rwxa" and info and info.kind == "dir" else "path", path))
    return rules


def test_remediation_writes_the_tree_watch_beside_a_persisted_path_rule_on_a_mounted_data_root() -> None:
    """Issue 21.6: the benchmark's `path=` rule is persisted and loaded on the mount point. In the
    kernel, `-w DIR` on a directory is a `dir=` rule, another rule than `-F path=DIR` (measured:
    both load; "Rule exists" only for dir= and -w). The plan writes the tree watch beside the user's
    rule, keeps the user's rule, and the host passes live and persisted afterwards."""
    from cisaudit.model.plan import after_apply, make_plan

    listing = good_listing()
    mounted = host(good_rules(), listing, mounts=DATA_ROOT_MOUNT)
    mounted.kernel_rules = _kernel_list(listing, mounted)
    before = Assessment(mounted, "docker")
    assert verdict(mounted, Check.LIVE).status == Status.FAIL
    plan = make_plan(before, [C115], benchmark("1.7.0"))
    assert plan.rule_lines == ["-w /var/lib/docker -p rwa -k docker"] and not plan.left_alone, plan
    after = after_apply(before, plan)
    kept = "-a exit,always -F path=/var/lib/docker -F perm=war -k docker"
    assert any(kept in text for _, text in after.rules_d), after.rules_d  # the user's rule: nothing lost
    for check in (Check.LIVE, Check.PERSISTED):
        got = verdict(after, check)
        assert got.status == Status.PASS, (check, got)
