"""A synthetic audit result set (100 hosts x 16 controls x 2 checks) with the user_properties the
suite's `verdict` fixture sets, to time cisaudit.plugin.report's HTML and JUnit output without hosts.
Run: pytest bench/synth/test_synthetic_report.py -p cisaudit.plugin (see bench/benchmark.py)."""

import os

import pytest

HOSTS = int(os.environ.get("SYNTH_HOSTS", "100"))
CONTROLS = [(f"1.1.{n}", f"/usr/bin/tool{n}", "1" if n <= 6 else "2") for n in range(3, 19)]
CASES = [
    (h, f"paramiko://root@10.0.{h // 250}.{h % 250 + 1}", c, check)
    for h in range(HOSTS)
    for c in CONTROLS
    for check in ("live", "persisted")
]


def _verdict(index: int, control_id: str) -> str:
    if index % 97 == 0:
        return "error"
    return ("pass", "pass", "fail", "not-applicable")[(index + int(control_id.rsplit(".", 1)[1])) % 4]


@pytest.fixture
def verdict(request: pytest.FixtureRequest, case: tuple) -> str:
    h, spec, (control_id, path, level), check = case
    status = _verdict(h, control_id)
    summary = {
        "pass": f"-w {path} -p rwxa -k docker in /etc/audit/rules.d/audit.rules:12",
        "fail": f"no rule for {path} with key 'docker'",
        "not-applicable": f"not applicable: {path} does not exist on this host",
        "error": "cannot connect: [Errno 111] Connection refused",
    }[status]
    evidence = "\n".join(f"/etc/audit/rules.d/{n:02d}-x.rules:{n}: -w {path}.old -p wa -k other" for n in range(6))
    request.node.user_properties += [
        ("host", spec),
        ("check", check),
        ("control_id", control_id),
        ("title", f"Ensure auditing is configured for Docker files and directories - {path}"),
        ("level", level),
        ("change", ""),
        ("verdict", status),
        ("summary", summary),
        ("evidence", evidence if status == "fail" else ""),
        ("remote_commands", "1"),
    ]
    if status == "error":
        raise RuntimeError(f"{spec}: {summary}")
    return status


@pytest.mark.parametrize("case", CASES, ids=[f"{s}|{c[0]}|{k}" for _, s, c, k in CASES])
def test_control(case: tuple, verdict: str) -> None:
    if verdict == "not-applicable":
        pytest.skip("not applicable")
    if verdict == "fail":
        pytest.fail("no rule", pytrace=False)
