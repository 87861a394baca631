"""--reboot-proof, the pure half: what a control's `persisted` verdict before a real boot and its
`live` verdict after it say together (no I/O; the reboot and the wait are in host/reboot.py).

A persisted verdict is a prediction of what the next boot loads; the boot is its test. The proof
of one control agrees when both verdicts have the same status. A persisted PASS that is not live
after the boot is the broken promise a golden image must not ship: the proof FAILs and names both
verdicts. A persisted FAIL that is live after the boot is a wrong prediction too (a false FAIL
costs as much as a false PASS): it FAILs as well. No new boot id, or a verdict that could not be
judged, is no proof: ERROR.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cisaudit.model.verdict import Status, Verdict

JUDGED = (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE)  # the statuses a model verdict can have


@dataclass(frozen=True)
class Proof:
    """One control on one host: the boot ids and the two verdicts the proof compares."""

    boot_id_before: str
    boot_id_after: str
    persisted_before: Verdict
    live_after: Verdict

    @property
    def rebooted(self) -> bool:
        return bool(self.boot_id_before) and bool(self.boot_id_after) and self.boot_id_before != self.boot_id_after

    @property
    def judged(self) -> bool:
        return self.persisted_before.status in JUDGED and self.live_after.status in JUDGED

    @property
    def agree(self) -> bool:
        return self.rebooted and self.judged and self.persisted_before.status == self.live_after.status

    def fields(self) -> dict[str, str | bool]:
        """What every output records (CaseRecord.reboot_proof, as JSON text)."""
        return {
            "boot_id_before": self.boot_id_before,
            "boot_id_after": self.boot_id_after,
            "persisted_before": str(self.persisted_before.status),
            "live_after": str(self.live_after.status),
            "agree": self.agree,
        }

    def encoded(self) -> str:
        return json.dumps(self.fields(), sort_keys=True)


def _both(proof: Proof) -> tuple[str, ...]:
    return (
        f"persisted before the boot ({proof.boot_id_before}): {proof.persisted_before.status}: "
        f"{proof.persisted_before.summary}",
        f"live after the boot ({proof.boot_id_after}): {proof.live_after.status}: {proof.live_after.summary}",
    )


def proof_verdict(proof: Proof) -> Verdict:
    """The reboot-proof check's verdict for one control (module docstring)."""
    if not proof.rebooted:
        return Verdict(
            Status.ERROR,
            f"no reboot proven: boot id {proof.boot_id_before or 'unknown'} before, "
            f"{proof.boot_id_after or 'unknown'} after",
        )
    if not proof.judged:
        return Verdict(Status.ERROR, "no proof: a verdict before or after the boot could not be judged", _both(proof))
    before, after = proof.persisted_before.status, proof.live_after.status
    if proof.agree:
        shown = Status.NOT_APPLICABLE if before == Status.NOT_APPLICABLE else Status.PASS
        return Verdict(shown, f"the boot kept the prediction: persisted {before} before it, live {after} after it")
    if before == Status.PASS:
        return Verdict(Status.FAIL, f"persisted PASS before the boot is not live after it: live {after}", _both(proof))
    return Verdict(
        Status.FAIL,
        f"the prediction was wrong: persisted {before} before the boot, live {after} after it",
        _both(proof),
    )
