"""A publisher registered beside the suite (cisaudit/outputs/registry.py) runs on the controller
before the file outputs; the host it fails for gets an ERROR record in every output and the exit code."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from cisaudit.outputs.results_json import records
from selftests.suite_runner import run_suite

PLUGIN = """
from cisaudit.outputs import registry


class Refusing:
    name = "refusing-api"

    def publish(self, results):
        return {host: "AccessDenied: not authorized to publish" for host in results.hosts}


registry.register(registry.Entry("refusing-api", (), lambda settings: Refusing()))
"""


def test_a_publication_error_reaches_every_output_and_the_exit_code(tmp_path: Path) -> None:
    (tmp_path / "refusing_publisher.py").write_text(PLUGIN)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run = run_suite(tmp_path, ["local://"], "-p", "refusing_publisher", "--controls=1.1.6", env=env)
    assert run.returncode == 1, run.output[-3000:]
    (error,) = [r for r in records(json.loads((tmp_path / "results.json").read_text())) if r["check"] == "publication"]
    assert error["status"] == "error" and "refusing-api: AccessDenied" in error["summary"]
    names = [c.get("name") for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")]
    assert "publication[local://]" in names
    assert "overall: errors" in (tmp_path / "results.xccdf.xml").read_text()
    assert (
        "overall: ERRORS" in run.output and "refusing-api: AccessDenied" in (tmp_path / "compliance.html").read_text()
    )
