"""CIS Docker Benchmark v1.8.0 on real Docker hosts (QEMU VMs with Debian's docker.io): 1.1.9 is
the socket docker.socket listens on, 1.1.5's exclusions follow the data-root and userns-remap,
and --remediate writes them before the data-root rule; --backout undoes it (docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cisaudit.model.plan import MANAGED_FILE
from selftests.e2e.scenarios import BASELINE
from selftests.suite_runner import run_suite

pytestmark = pytest.mark.vm
SETUP = BASELINE + "systemctl start docker.socket\nmkdir -p {root}/volumes {root}/overlay2\n"
REMAP = (
    'echo \'{"userns-remap": "default"}\' > /etc/docker/daemon.json\n'
    "echo dockremap:165536:65536 >> /etc/subuid\necho dockremap:165536:65536 >> /etc/subgid\n"
)
MANAGED = MANAGED_FILE
CONTROLS = "--controls=1.1.5,1.1.9"


def test_v1_8_0_socket_data_root_and_userns_remap(fleet, tmp_path: Path) -> None:
    plain, remapped = fleet[0], fleet[1]
    for vm, setup in (
        (plain, SETUP.format(root="/var/lib/docker")),
        (remapped, REMAP + SETUP.format(root="/var/lib/docker/165536.165536")),
    ):
        fleet.reset(vm)
        rc, out, err = vm.run(setup, timeout=180)
        assert rc == 0, out + err
    hosts = [plain.spec, remapped.spec]
    args = (f"--known-hosts={fleet.known_hosts}", "--benchmark=1.8.0", CONTROLS)

    before = run_suite(tmp_path / "before", hosts, *args)
    for spec in hosts:
        sock = before.case(spec, "1.1.9", "live")
        assert sock.verdict == "fail" and sock.audited.startswith("/run/docker.sock (ListenStream= of"), sock
        assert before.verdict(spec, "1.1.5", "live") == "fail"
    assert before.case(remapped.spec, "1.1.5", "live").audited.endswith(
        "excluded: /var/lib/docker/165536.165536/volumes; excluded: /var/lib/docker/165536.165536/overlay2"
    )

    fixed = run_suite(tmp_path / "fixed", hosts, *args, "--remediate", "--verify-events")
    for spec in hosts:
        for check in ("live", "persisted", "events"):
            for cid in ("1.1.5", "1.1.9"):
                assert fixed.verdict(spec, cid, check) == "pass", (spec, cid, check, fixed.case(spec, cid, check))
    for vm, root in ((plain, "/var/lib/docker"), (remapped, "/var/lib/docker/165536.165536")):
        _, text, _ = vm.run(f"grep -- '^-' {MANAGED}")
        assert text.splitlines() == [
            f"-a exit,never -F dir={root}/volumes",
            f"-a exit,never -F dir={root}/overlay2",
            "-a exit,always -F path=/var/lib/docker -F perm=war -k docker",
            "-w /run/docker.sock -k docker",
        ], text

    undone = run_suite(tmp_path / "undone", hosts, *args, "--backout")
    for spec in hosts:
        assert undone.verdict(spec, "host", "backout") == "pass", undone.case(spec, "host", "backout")
        assert undone.verdict(spec, "1.1.5", "live") == "fail"
