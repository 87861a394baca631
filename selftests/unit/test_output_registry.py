"""cisaudit.outputs.registry: one interface for file outputs and publishers, checked when loaded;
a publisher's host error becomes that host's ERROR record in every output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from cisaudit.model.verdict import Check, Status
from cisaudit.outputs import registry
from cisaudit.outputs.junit import JunitOutput
from cisaudit.outputs.results import Overall, RunResults
from cisaudit.outputs.results_json import records, render_json
from selftests.suite_runner import REPO
from selftests.unit.test_junit_spool import PYTEST_FILE
from selftests.unit.test_outputs import A, B, complete, results


def test_a_second_entry_with_a_taken_name_or_flag_fails_when_registered() -> None:
    with pytest.raises(ValueError, match="'xccdf': the name is already registered"):
        registry.register(registry.Entry("xccdf", (), lambda s: None))
    taken = registry.Option("--results-json", "again")
    with pytest.raises(ValueError, match="--results-json is already registered"):
        registry.register(registry.Entry("mine", (taken,), lambda s: None))
    with pytest.raises(ValueError, match="--junitxml is already registered"):
        registry.register(registry.Entry("mine", (registry.Option("--junitxml", "x"),), lambda s: None))
    with pytest.raises(KeyError, match="no output 'nope'"):
        registry.entry("nope")
    assert "mine" not in registry.REGISTRY


def test_the_registry_is_the_one_list_of_output_options() -> None:
    flags = registry.path_flags()
    assert flags == {
        "compliance_report": "--compliance-report",
        "results_json": "--results-json",
        "xccdf": "--xccdf",
        "xmlpath": "--junitxml",
        "htmlpath": "--html",
    }


def _settings(**paths: str) -> registry.Settings:
    return registry.Settings(lambda dest: paths.get(dest, ""))


def test_entries_are_built_from_the_options(tmp_path: Path) -> None:
    publishers, outputs = registry.build(_settings(results_json=str(tmp_path / "r.json"), xccdf=""))
    assert publishers == [] and [o.name for o in outputs] == ["results_json"]
    assert registry.build(_settings()) == ([], [])


@dataclass
class FailingFor:
    name: str
    hosts: tuple[str, ...]

    def publish(self, results: RunResults) -> Mapping[str, str]:
        return {h: "AccessDeniedException: not authorized" for h in self.hosts if h in results.hosts}


def test_a_publication_error_is_the_hosts_error_record_in_every_output(tmp_path: Path) -> None:
    run = results(*complete(A), *complete(B), hosts=(A, B))
    assert run.overall == Overall.COMPLIANT
    publisher = FailingFor("security-hub", (B,))
    assert isinstance(publisher, registry.Publisher) and not isinstance(publisher, registry.Output)
    registry.publication_errors(run, publisher.publish(run), publisher.name, 1_800_000_100.0)
    assert run.overall == Overall.ERRORS and run.counts(B)[Status.ERROR] == 1 and run.counts(A)[Status.ERROR] == 0

    junit = tmp_path / "junit.xml"
    junit.write_text(PYTEST_FILE)
    _, outputs = registry.build(_settings(results_json=str(tmp_path / "r.json"), xccdf=str(tmp_path / "x.xml")))
    for output in [*outputs, JunitOutput("junit", junit)]:
        output.write(run)
    document = json.loads((tmp_path / "r.json").read_text())
    schema = json.loads((REPO / "docs" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    (error,) = [r for r in records(document) if r["status"] == "error"]
    assert (error["host"], error["check"], error["summary"]) == (
        B,
        Check.PUBLICATION,
        f"{B}: security-hub: AccessDeniedException: not authorized",
    )
    assert "overall: errors" in (tmp_path / "x.xml").read_text()
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1" and suite.get("tests") == "4"
    (case,) = [c for c in suite.iter("testcase") if c.get("name") == f"publication[{B}]"]
    assert case.find("error") is not None


def test_an_output_that_cannot_be_written_says_why_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    _, (output,) = registry.build(_settings(results_json=str(blocker / "r.json")))
    with pytest.raises(registry.OutputError, match=r"^cannot write .*/file/r.json: File exists$"):
        output.write(results(*complete(A)))


def test_results_json_stores_an_outcome_shared_by_hosts_once() -> None:
    """Issue 26.3: a fleet's hosts mostly carry the same evidence; schema 2.0 keeps each outcome once."""
    hosts = [f"ssm://i-{n:017x}" for n in range(1, 51)]
    run = results(*(c for h in hosts for c in complete(h, **{"1.1.6|live": "fail"})), hosts=tuple(hosts))
    document = json.loads(render_json(run))
    jsonschema.Draft202012Validator(json.loads((REPO / "docs" / "results.schema.json").read_text())).validate(document)
    per_host = len(complete(A))
    assert len(document["outcomes"]) == per_host and len(document["results"]) == 50
    expanded = records(document)
    assert len(expanded) == 50 * per_host
    assert [(r["host"], r["control_id"], r["check"], r["verdict"]) for r in expanded] == [
        (c.host, c.control_id, c.check, c.verdict) for cases in run.by_host.values() for c in cases
    ]


class Raising:
    name = "raising"

    def publish(self, results: RunResults) -> Mapping[str, str]:
        raise ConnectionError("endpoint unreachable")


def test_a_publisher_that_raises_failed_for_every_host_and_a_wrong_build_fails() -> None:
    run = results(*complete(A), *complete(B))
    assert registry.publish(Raising(), run) == {
        B: "ConnectionError: endpoint unreachable",
        A: "ConnectionError: endpoint unreachable",
    }
    registry.REGISTRY["wrong"] = registry.Entry("wrong", (), lambda settings: object())  # type: ignore[arg-type,return-value]
    try:
        with pytest.raises(TypeError, match="'wrong' built object: neither an Output nor a Publisher"):
            registry.build(_settings())
    finally:
        del registry.REGISTRY["wrong"]
