"""The judging layer, without pytest: a run's validated context (context.py), the check registry
(checks.py), the change a run makes to a host (change.py) and `judge` (judge.py), which turns one
case on one host session into its CaseRecord, waivers applied. cisaudit.plugin only adapts
pytest to it: options -> RunContext, scheduling, teardown, reporting."""
