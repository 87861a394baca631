"""Scenarios for the test VMs, in the manner of ComplianceAsCode's test scenarios: each is a
shell script that puts a fresh VM into a known state, and the verdict it must give for every
control and check. The expectations are written from what the image holds (measured with
debugfs on the built image), not from the suite's own logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cisaudit.model.catalogue import controls
from cisaudit.model.verdict import CONTROL_CHECKS, HOST_CHECKS

# Where each control's path is in the test image once BASELINE has run (containerd running,
# /var/lib/docker created). Absent: 1.1.11 (no daemon.json), 1.1.13 (no /etc/sysconfig).
VM_PATHS = {
    "1.1.3": "/usr/sbin/dockerd",  # the benchmark's /usr/bin/dockerd does not exist on Debian
    "1.1.4": "/run/containerd",
    "1.1.5": "/var/lib/docker",
    "1.1.6": "/etc/docker",
    "1.1.7": "/lib/systemd/system/docker.service",
    "1.1.8": "/run/containerd/containerd.sock",
    "1.1.9": "/lib/systemd/system/docker.socket",
    "1.1.10": "/etc/default/docker",
    "1.1.12": "/etc/containerd/config.toml",
    "1.1.14": "/usr/bin/containerd",
    "1.1.15": "/usr/bin/containerd-shim",
    "1.1.16": "/usr/bin/containerd-shim-runc-v1",
    "1.1.17": "/usr/bin/containerd-shim-runc-v2",
    "1.1.18": "/usr/bin/runc",
}
# Where a rule must be for the kernel to record the control's accesses: on the link's target.
VM_RULE_PATHS = {**VM_PATHS, "1.1.18": "/usr/sbin/runc"}
# Measured on the VM: at boot auditd loads the rules before containerd creates /run/containerd
# (tmpfs), so a rule on containerd.sock stops the load and every later rule is lost.
AFTER_SOCK = ("1.1.9", "1.1.10", "1.1.12", "1.1.14", "1.1.15", "1.1.16", "1.1.17", "1.1.18")
BOOT_LOST = ("1.1.8", *AFTER_SOCK)
EARLY_RUN_CONTAINERD = "printf 'd /run/containerd 0711 root root -\\n' > /etc/tmpfiles.d/containerd-early.conf\n"
CONTROLS = {c.id: c for c in controls()}
BASELINE = """set -e
systemctl start containerd
for i in $(seq 50); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.2; done
mkdir -p /var/lib/docker
"""


def benchmark_rules(paths: dict[str, str] = VM_PATHS, key: str = "docker") -> str:
    """The benchmark's own rule text for each applicable control, at the host's real path."""
    return "".join(CONTROLS[cid].rule_text(path, key) + "\n" for cid, path in paths.items())


def rules_d(text: str, name: str = "60-scenario.rules") -> str:
    return f"cat > /etc/audit/rules.d/{name} <<'EOF'\n{text}EOF\nchmod 600 /etc/audit/rules.d/{name}\n"


LOAD = "augenrules --load >/dev/null\n"


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: str  # run as root on a fresh VM after BASELINE
    live: str = "pass"  # verdict of every applicable control unless overridden
    persisted: str = "pass"
    overrides: dict[tuple[str, str], str] = field(default_factory=dict)
    host: dict[str, str] = field(default_factory=dict)  # host checks that do not pass
    baseline: bool = True
    paths: dict[str, str] = field(default_factory=lambda: dict(VM_PATHS))
    # --remediate: controls it must leave failing (a rule it did not write is at fault), and
    # the verdict of its own check
    unfixable: tuple[str, ...] = ()
    remediation: str = "pass"

    def expected(self) -> dict[tuple[str, str], str]:
        verdicts = {}
        for control in controls():
            for check in CONTROL_CHECKS:
                applicable = control.id in self.paths
                default = getattr(self, check) if applicable else "not-applicable"
                verdicts[(control.id, check)] = self.overrides.get((control.id, check), default)
        for check in HOST_CHECKS:
            verdicts[("host", check)] = self.host.get(check, "pass")
        return verdicts


def _both(ids, verdict: str) -> dict[tuple[str, str], str]:
    return {(cid, check): verdict for cid in ids for check in CONTROL_CHECKS}


def _persisted(ids, verdict: str = "fail") -> dict[tuple[str, str], str]:
    return {(cid, "persisted"): verdict for cid in ids}


LITERAL = "".join(c.rule_text(c.path) + "\n" for c in controls())
ORDER = list(VM_PATHS)
HALF = ORDER[:6]
MODERN = "".join(
    f"-a always,exit -F arch={abi} -S all -F path={path} -F perm={CONTROLS[cid].required_perms} -F key=docker\n"
    for cid, path in VM_PATHS.items()
    for abi in ("b64", "b32")
)
# /etc/init.d/docker too: systemd would otherwise generate a docker.service from it
# (FragmentPath /run/systemd/generator.late/docker.service).
NO_DOCKER = """systemctl stop docker.socket docker containerd 2>/dev/null || true
rm -rf /usr/sbin/dockerd /usr/bin/containerd /usr/bin/containerd-shim* /usr/bin/runc /usr/sbin/runc \\
  /etc/docker /etc/containerd /etc/default/docker /lib/systemd/system/docker.service \\
  /lib/systemd/system/docker.socket /run/containerd /var/lib/docker /etc/init.d/docker
systemctl daemon-reload
"""
AUDITCTL_UNIT = """mkdir -p /etc/systemd/system/auditd.service.d
printf '[Service]\\nExecStartPost=\\nExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules\\n' \\
  > /etc/systemd/system/auditd.service.d/override.conf
systemctl daemon-reload
"""
MOVED = {**VM_PATHS, "1.1.5": "/srv/docker", "1.1.11": "/etc/docker/daemon.json"}

SCENARIOS = [
    Scenario("compliant", rules_d(benchmark_rules(VM_RULE_PATHS)) + EARLY_RUN_CONTAINERD + LOAD),
    # The benchmark's rules as written: the runc rule is on the link, and the containerd.sock rule
    # stops the boot-time load (the same files load cleanly now).
    Scenario(
        "benchmark-rules",
        rules_d(benchmark_rules()) + LOAD,
        overrides={**_persisted(BOOT_LOST), **_both(["1.1.18"], "fail")},
        host={"load-health": "fail"},
    ),
    Scenario(
        "benchmark-literal-16",
        rules_d(LITERAL) + "augenrules --load >/dev/null 2>&1 || true\n",
        overrides={
            **_persisted(BOOT_LOST),
            **_both(["1.1.3", "1.1.14", "1.1.15", "1.1.16", "1.1.17", "1.1.18"], "fail"),
        },
        host={"load-health": "fail"},
        unfixable=("1.1.14", "1.1.15", "1.1.16", "1.1.17", "1.1.18"),
    ),
    # path= on /etc/docker watches the directory's inode only, not the files in it
    Scenario(
        "modern-arch-pairs",
        rules_d(MODERN) + LOAD,
        overrides={**_persisted(BOOT_LOST), **_both(["1.1.6", "1.1.18"], "fail")},
        host={"load-health": "fail"},
    ),
    Scenario("empty", "", live="fail", persisted="fail"),
    Scenario(
        "neighbours-only",
        rules_d(
            "-w /run/containerd/containerd.sock -k docker\n"
            "-w /etc/docker/daemon.json -k docker\n"
            "-w /usr/bin/containerd-shim -k docker\n"
        )
        + LOAD,
        live="fail",
        persisted="fail",
        overrides={("1.1.8", "live"): "pass", ("1.1.15", "live"): "pass"},
        host={"load-health": "fail"},
    ),
    Scenario(
        "commented",
        rules_d(
            "".join("#" + line + "\n" for line in benchmark_rules().splitlines())
            + "".join("   # " + line + "\n" for line in benchmark_rules().splitlines())
        )
        + LOAD,
        live="fail",
        persisted="fail",
    ),
    Scenario(
        "narrow-perms",
        rules_d("".join(f"-w {p} -p wa -k docker\n" for p in VM_PATHS.values())) + LOAD,
        live="fail",
        persisted="fail",
        host={"load-health": "fail"},
    ),
    # Fixed by rules placed first (issue 20.1): the `dockr` rules' accesses then carry `docker`,
    # and the plan says so.
    Scenario(
        "wrong-key",
        rules_d(benchmark_rules(key="dockr")) + LOAD,
        live="fail",
        persisted="fail",
        host={"load-health": "fail"},
    ),
    # The listing prints these like `never` rules and nothing persisted says which, but the kernel's
    # own list does: the VM has no python3, and the probe reads it with perl (issue 21.7).
    Scenario(
        "live-not-persisted",
        "".join(f"auditctl {line}\n" for line in benchmark_rules().splitlines()),
        persisted="fail",
        overrides=_both(["1.1.18"], "fail"),  # the runc rule is on the link, as written
    ),
    Scenario(
        "persisted-not-loaded",
        rules_d(
            benchmark_rules({c: VM_PATHS[c] for c in HALF})
            + "-w /nonexistent-dir/file -k docker\n"
            + benchmark_rules({c: p for c, p in VM_PATHS.items() if c not in HALF})
        )
        + "augenrules --load >/dev/null 2>&1 || true\n",
        live="fail",
        persisted="fail",
        overrides={**_both(HALF[:-1], "pass"), (HALF[-1], "live"): "pass"},
        host={"load-health": "fail"},
        unfixable=tuple(c for c in VM_PATHS if c not in HALF),
    ),
    Scenario(
        "never-first",
        rules_d("-a never,exit -F path=/etc/docker -F perm=rwxa\n" + benchmark_rules()) + LOAD,
        overrides={**_persisted(BOOT_LOST), **_both(["1.1.6", "1.1.18"], "fail")},
        host={"load-health": "fail"},
        unfixable=("1.1.6",),
    ),
    Scenario(
        "auditctl-mode",
        AUDITCTL_UNIT
        + rules_d("-w /etc/docker -k docker\n")
        + "cat >> /etc/audit/audit.rules <<'EOF'\n"
        + benchmark_rules({c: p for c, p in VM_PATHS.items() if c != "1.1.6"})
        + "EOF\n"
        + "auditctl -D >/dev/null\nauditctl -R /etc/audit/audit.rules >/dev/null\n"
        + "auditctl -w /etc/docker -k docker\n",
        # /etc/docker's live watch has no persisted twin; the kernel's list (perl) proves it live.
        overrides={**_persisted(BOOT_LOST), **_persisted(["1.1.6"]), **_both(["1.1.18"], "fail")},
        host={"load-health": "fail"},
    ),
    Scenario("immutable", rules_d(benchmark_rules(VM_RULE_PATHS) + "-e 2\n") + EARLY_RUN_CONTAINERD + LOAD),
    Scenario("immutable-empty", rules_d("-e 2\n") + LOAD, live="fail", persisted="fail", remediation="fail"),
    Scenario("docker-absent", NO_DOCKER, baseline=False, paths={}),
    Scenario(
        "moved-data-root",
        "mkdir -p /srv/docker && rmdir /var/lib/docker\n"
        'printf \'{"data-root": "/srv/docker"}\\n\' > /etc/docker/daemon.json\n'
        + rules_d(benchmark_rules(MOVED))
        + LOAD,
        paths=MOVED,
        # daemon.json is covered by the /etc/docker subtree watch before the socket line
        overrides={**_persisted(BOOT_LOST), **_both(["1.1.18"], "fail")},
        host={"load-health": "fail"},
    ),
]
BY_NAME = {s.name: s for s in SCENARIOS}
