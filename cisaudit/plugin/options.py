"""The command line checked before any host is touched: pure functions, each raising OptionError
with one line that says what to do. The plugin (cisaudit.plugin) turns it into a usage error
(exit 4); `preflight.py` adds the checks that read the file system.

testinfra's own options mean what testinfra says, or are refused: `--connection` names the
scheme of a bare host in `--hosts` (one of hostspec.TRANSPORTS); `--ansible-inventory`,
`--force-ansible` and `--ssh-extra-args` are refused with the option to use instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cisaudit.host.hostspec import INSTANCE_ID, TRANSPORTS, Capability, transport_of
from cisaudit.model.kernel import AuditKeys
from cisaudit.model.shard import Shard

SCHEMES = tuple(TRANSPORTS)  # what the suite connects over (host/hostspec.py TRANSPORTS)
DEFAULT_HOST = "local://"
REFUSED_TESTINFRA = {  # testinfra option (dest) -> what to use instead
    "ansible_inventory": "--ansible-inventory: the CIS checks do not read Ansible inventories; "
    "list the hosts with --hosts=ssh://USER@HOST,... (ansible-inventory --list prints them)",
    "force_ansible": "--force-ansible: the CIS checks never connect through Ansible; "
    "name each host with its scheme in --hosts (ssh://, paramiko://, ssm://)",
    "ssh_extra_args": "--ssh-extra-args: not passed to any connection; put the options in an "
    "ssh_config file and pass --ssh-config FILE (host keys stay checked per --known-hosts)",
}


class OptionError(ValueError):
    """A bad command line; the message is one line that says what to do."""


def _entries(option: str, text: str, example: str) -> list[str]:
    """The comma list's entries; an empty value or an empty entry (an unset variable) is refused."""
    if not text.strip():
        raise OptionError(f"{option} is empty (an unset variable?): give {example}, or leave {option} out")
    entries = [entry.strip() for entry in text.split(",")]
    if "" in entries:
        position = entries.index("") + 1
        raise OptionError(f"{option}={text!r}: entry {position} is empty (an unset variable?); remove the extra comma")
    return entries


def host_list(hosts: str | None, connection: str | None, ssm_targets: bool = False) -> list[str]:
    """--hosts as host spec texts (checked later by hostspec.parse_spec): a bare host takes the
    scheme --connection names, as in testinfra; no --hosts (and no --ssm-targets) is this machine."""
    if connection is not None and connection not in SCHEMES:
        raise OptionError(
            f"--connection={connection}: the CIS checks connect over {', '.join(SCHEMES)} only; "
            "name each host with its scheme in --hosts (e.g. --hosts=ssh://root@web1)"
        )
    if hosts is None:
        if connection not in (None, "local", "ssm") or (connection == "ssm" and not ssm_targets):
            raise OptionError(f"--connection={connection} needs --hosts (e.g. --hosts=root@web1)")
        return [] if ssm_targets else [DEFAULT_HOST]
    entries = _entries("--hosts", hosts, "host specs like --hosts=ssh://root@web1 (the default is local://)")
    return [e if "://" in e or connection is None else f"{connection}://{e}" for e in entries]


def refused_testinfra(given: dict[str, object]) -> None:
    """testinfra options the suite does not honour, given their parsed values (dest -> value)."""
    for dest, message in REFUSED_TESTINFRA.items():
        if given.get(dest):
            raise OptionError(message)


def control_ids(text: str | None, known: list[str]) -> list[str]:
    """--controls as ids (all when the option is absent); an unknown id lists the valid ones."""
    if text is None:
        return []
    ids = _entries("--controls", text, "control ids like --controls=1.1.3,1.1.4")
    unknown = sorted(set(ids) - set(known))
    if unknown:
        raise OptionError(f"--controls: unknown control id {', '.join(unknown)}; valid ids: {', '.join(known)}")
    return ids


def ssm_targets(text: str | None) -> list[str]:
    """--ssm-targets entries: managed instance ids (i-..., mi-...) and tag:Key=Value filters."""
    if text is None:
        return []
    targets = _entries("--ssm-targets", text, "instance ids and/or tag:Key=Value")
    for target in targets:
        key, sep, value = target.removeprefix("tag:").partition("=")
        if target.startswith("tag:") and not (key and sep and value):
            raise OptionError(f"--ssm-targets: {target!r}: a tag target is tag:Key=Value, both non-empty")
        if not target.startswith("tag:") and not INSTANCE_ID.fullmatch(target):
            raise OptionError(
                f"--ssm-targets: {target!r} is neither a managed instance id (i-0123456789abcdef0) nor tag:Key=Value"
            )
    return targets


@dataclass(frozen=True)
class Numbers:
    connect_timeout: float
    command_timeout: float
    max_output_mb: float
    aggregate_above: int


def check_numbers(numbers: Numbers) -> None:
    """Timeouts and the output cap are positive and finite (0 or less would mean no limit);
    --aggregate-above is a host count."""
    for option, value in (
        ("--connect-timeout", numbers.connect_timeout),
        ("--command-timeout", numbers.command_timeout),
        ("--max-output-mb", numbers.max_output_mb),
    ):
        if not (math.isfinite(value) and value > 0):
            raise OptionError(f"{option} {value:g}: give a number of {_unit(option)} above 0")
    if numbers.connect_timeout < 1:  # testinfra's backends take whole seconds: 0.5 s would be none
        raise OptionError(f"--connect-timeout {numbers.connect_timeout:g}: give at least 1 (whole seconds)")
    if numbers.aggregate_above < 0:
        raise OptionError(f"--aggregate-above {numbers.aggregate_above}: give a number of hosts, 0 or more")


def _unit(option: str) -> str:
    return "MiB" if option == "--max-output-mb" else "seconds"


def check_modes(remediate: bool, backout: bool, dry_run: bool) -> None:
    if dry_run and not (remediate or backout):
        raise OptionError("--dry-run shows a change without making it: add --remediate or --backout")


def check_changes(hosts: list[str], remediate: bool, backout: bool) -> None:
    """--remediate and --backout only over transports that can change the host (Capability.REMEDIATE)."""
    flag = "--remediate" if remediate else "--backout" if backout else ""
    refused = [h for h in hosts if flag and not transport_of(h).can(Capability.REMEDIATE)]
    if refused:
        why = transport_of(refused[0]).blind
        raise OptionError(
            f"{flag}: {refused[0]} cannot be changed through its transport ({why}); "
            f"leave it out of --hosts, or change that host over ssh:// or local://"
        )


def audit_keys(values: list[str] | None) -> AuditKeys:
    """--audit-key, repeated or comma-separated, or `any` (model/kernel.py AuditKeys); default docker."""
    if values is not None and not any(v.strip() for v in values):
        raise OptionError("--audit-key is empty (an unset variable?): give the key the rules carry, e.g. docker")
    try:
        return AuditKeys.parse(values or ["docker"])
    except ValueError as exc:
        raise OptionError(str(exc)) from None


@dataclass(frozen=True)
class RebootProof:
    """--reboot-proof and what permits it (cisaudit/host/reboot.py reboots each host)."""

    reboot_proof: bool
    i_may_reboot: bool
    require_all: bool
    dry_run: bool


def check_reboot_proof(given: RebootProof, hosts: list[str]) -> None:
    """--reboot-proof reboots every host: only with --require-all (a golden image) or an explicit
    --i-may-reboot, never the machine running the suite, never in a dry run."""
    if given.i_may_reboot and not given.reboot_proof:
        raise OptionError("--i-may-reboot only permits --reboot-proof: add --reboot-proof, or leave it out")
    if not given.reboot_proof:
        return
    if not (given.require_all or given.i_may_reboot):
        raise OptionError(
            "--reboot-proof reboots every host: add --require-all (golden image) or --i-may-reboot to allow it"
        )
    if given.dry_run:
        raise OptionError("--reboot-proof reboots every host and --dry-run changes nothing: leave one out")
    for host in hosts:
        transport = transport_of(host if "://" in host else f"paramiko://{host}")
        if transport.reboot is None:
            why = (
                "the machine running the suite: audit it over ssh:// instead"
                if transport.scheme == "local"
                else f"{transport.scheme}:// has no way to reboot a host"
            )
            raise OptionError(f"--reboot-proof cannot reboot {host}, {why}")


def shard(text: str | None) -> Shard | None:
    """--shard K/N (model/shard.py), or None without it."""
    if text is None:
        return None
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise OptionError(f"--shard: {exc}") from None
