"""The judging layer, without pytest: a run's validated context (context.py), one case (case.py),
the check registry (checks.py), the change a run makes to a host (change.py), a waiver's effect
(waive.py) and `judge` (judge.py), which turns one case on one host session into its CaseRecord.
cisaudit.plugin only adapts pytest to it: options -> RunContext, scheduling, teardown, reporting."""
