"""What one host looked like at probe time: the parsed model every verdict is judged on.
Built by cisaudit.host.probe.parse_probe (docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PathInfo:
    path: str
    kind: str  # file, dir, symlink, socket, absent
    target: str  # readlink -m: where it resolves to ("" when it could not be resolved)
    owner: str = ""  # "MODE UID GID" (octal mode) when it exists

    @property
    def exists(self) -> bool:
        return self.kind != "absent"


@dataclass
class Snapshot:
    """What one host looked like at probe time. Built only by parse_probe."""

    uid: int | None = None
    arch: str = ""
    auditctl: str | None = None
    status_rc: int | None = None
    status_text: str = ""
    listing_rc: int | None = None
    listing_text: str = ""
    # What the listing is: `auditctl -l`'s output, or the kernel's own list rendered as auditctl
    # prints it (model/kernel_list.py: the probe then runs no auditctl -l); its lines cite it.
    listing_source: str = "auditctl -l"
    auditd: str | None = None
    awk: str = ""  # which awk augenrules gets (mawk and gawk read its patterns differently)
    auditd_running: bool = False
    systemd: bool = False
    auditd_unit: str = ""
    audit_rules_unit: str = ""  # audit 4's separate rule-loading unit, when it exists
    auditd_enabled: str = ""  # `systemctl is-enabled auditd.service` ("" when unknown)
    cmdline: str = ""  # /proc/cmdline (audit=0 disables audit at boot)
    boot_id: str = ""  # /proc/sys/kernel/random/boot_id: a new one each boot (--reboot-proof)
    mounts: str = ""  # /proc/self/mounts
    tmpfiles: list[tuple[str, str]] = field(default_factory=list)  # (path, text) of tmpfiles.d files
    # The kernel's rule list read over netlink, where python3 or perl runs on the host: (list,
    # action, kind, path) per rule in the listing's order; None when it could not be read.
    kernel_rules: list[tuple[str, str, str, str]] | None = None
    # Where it could not: the birth time (`stat %W`, 0 when unknown) of each `-w` line's path, and
    # the boot time (/proc/stat btime), in seconds since the epoch. None: not probed (no probe ran).
    watch_births: dict[str, int] | None = None
    boot_time: int | None = None
    units: dict[str, str] = field(default_factory=dict)
    rules_d: list[tuple[str, str]] = field(default_factory=list)  # (path, text) in loader order
    rules_d_special: list[str] = field(default_factory=list)  # *.rules entries that are no regular file
    rules_d_words: dict[str, str] = field(default_factory=dict)  # other rules.d files a split name names
    audit_version: str = ""  # `auditctl -v`
    augenrules_script: str | None = None  # the lines of the host's augenrules that say how it merges
    audit_rules_stat: str = ""  # "MODE UID" of /etc/audit/audit.rules ("" when absent)
    unreadable: list[str] = field(default_factory=list)
    audit_rules: str | None = None
    daemon_json: str | None = None
    dockerd_args: list[str] = field(default_factory=list)  # the running dockerd's argv ([] when not running)
    # (pid, uid) of processes named dockerd that are not root's: they never inform the model.
    ignored_dockerd: list[tuple[str, str]] = field(default_factory=list)
    subuid: str | None = None  # /etc/subuid (userns-remap ranges)
    subgid: str | None = None
    socket_units: dict[str, str] = field(default_factory=dict)  # socket unit -> its text, drop-ins included
    containerd_config: str | None = None
    binaries: dict[str, str] = field(default_factory=dict)
    paths: dict[str, PathInfo] = field(default_factory=dict)
    # -- the kernel filter model's facts (cisaudit/model/kernel.py kernel_facts) --
    syscall_tables: dict[str, str] = field(default_factory=dict)  # ausyscall table -> "NUMBER NAME" lines
    lsm_list: str | None = None  # /sys/kernel/security/lsm (None: unreadable, securityfs not mounted)
    lsm_labelled: bool | None = None  # the probe's process has an LSM label (/proc/self/attr/current)
    selinux: bool | None = None  # selinuxfs is mounted (SELinux enabled)
    # (name, pid, start in ticks since boot) of the kernel's auditd and root's dockerd and containerd
    # (cisaudit/model/unaudited.py); lines the probe could not read are left out.
    process_starts: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def status(self) -> dict[str, str]:
        """`auditctl -s` as a dict (enabled, failure, pid, ...)."""
        pairs = (line.split(None, 1) for line in self.status_text.splitlines())
        return {p[0]: p[1] if len(p) > 1 else "" for p in pairs if p}
