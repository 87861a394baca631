"""Publishers: the run's results sent where AWS users look (README "AWS").

Pure mapping (no I/O): `compliance_items` (SSM Compliance) and `asff` (Security Hub findings).
I/O: `ssm_compliance`, `security_hub`. A publisher has a `name` and `publish(results)`, which
returns host -> why its publication failed; each becomes that host's ERROR record (check
`publish`) in every output (cisaudit/plugin/publish.py).
"""
