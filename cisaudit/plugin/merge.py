"""Join the results.json of every `--shard K/N` run into the outputs one run would have written:

    python -m cisaudit.plugin.merge shard-*/results.json --out reports/

writes reports/compliance.html, results.json, results.xccdf.xml (with results.xccdf.hosts/) and
junit.xml with the report writers a run uses (README "Past one runner"): what one run of all the
shards' hosts writes, so above the shards' --aggregate-above without --fleet-reports the compact
outputs (a JUnit testcase per host and test function, no per-host XCCDF files). The shards must be
the N shards of one audit, each once (their command lines say which); a missing, doubled or foreign
shard is a one-line usage error (exit 4). Exit 1 when a check failed or errored, as pytest's.
"""

from __future__ import annotations

import argparse
import ast
import gc
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from cisaudit.model.heap import uncollected
from cisaudit.model.shard import FleetShape, fleet_shape, incomplete, without_shard
from cisaudit.outputs.compliance_html import iter_html
from cisaudit.outputs.files import OutputError
from cisaudit.outputs.junit_results import SuiteTests, iter_junit
from cisaudit.outputs.registry import FileOutput, XccdfOutput, host_xccdf_dir
from cisaudit.outputs.results import Overall, RunResults
from cisaudit.outputs.results_json import iter_json
from cisaudit.outputs.results_read import ResultsError, joined, read_results
from cisaudit.outputs.terminal import overall_line
from cisaudit.plugin import AGGREGATE_ABOVE
from cisaudit.plugin.cases import case_name

USAGE_ERROR = 4  # pytest's exit code for a bad command line
SUITE = Path("tests/test_cis_docker_audit.py")  # as in the suite's node ids (pytest's rootdir: the checkout)
# output file in --out -> how it is made from the joined results, the suite's tests and whether
# the outputs are compact (results.xccdf.xml: XccdfOutput)
WRITERS: dict[str, Callable[[RunResults, SuiteTests, bool], Iterable[str]]] = {
    "compliance.html": lambda r, _, __: iter_html(r),
    "results.json": lambda r, _, __: iter_json(r),
    "junit.xml": iter_junit,
}
XCCDF = "results.xccdf.xml"


def suite_tests(path: Path = SUITE) -> SuiteTests:
    """The suite's test functions' lines, as pytest reports them (0-based, the `def` line)."""
    tree = ast.parse(path.read_text(encoding="utf-8")) if path.exists() else ast.Module([], [])
    lines = {n.name: n.lineno - 1 for n in tree.body if isinstance(n, ast.FunctionDef)}
    return SuiteTests(str(path), lines, case_name)


def merged(paths: Sequence[Path]) -> tuple[RunResults, FleetShape]:
    """The shards' results joined, and the outputs' shape their command lines give; ResultsError
    (one line) when they are not one audit's shards."""
    runs = [(str(p), read_results(p)) for p in paths]
    commands = [without_shard(shlex.split(r.info.command)) for _, r in runs]
    try:
        problem = incomplete([shard for _, shard in commands])
        shapes = {fleet_shape(args, AGGREGATE_ABOVE) for args, _ in commands}
    except ValueError as exc:
        raise ResultsError(f"a results file's command: {exc}") from None
    if problem:
        raise ResultsError(problem)
    if len(shapes) > 1:
        raise ResultsError("the shards were run with different --aggregate-above or --fleet-reports: merge one run's")
    return joined(runs, shlex.join(commands[0][0])), shapes.pop()


def _for_suite(
    writer: Callable[[RunResults, SuiteTests, bool], Iterable[str]], tests: SuiteTests, compact: bool
) -> Callable[[RunResults], Iterable[str]]:
    return lambda results: writer(results, tests, compact)


def write_outputs(results: RunResults, out: Path, tests: SuiteTests, compact: bool = False) -> list[Path]:
    """Every output a run writes, with the run's own writers (outputs/registry.py); `compact`: as a
    run above --aggregate-above without --fleet-reports. OutputError (one line) when one cannot be written."""
    out.mkdir(parents=True, exist_ok=True)
    for name, writer in WRITERS.items():
        FileOutput(name, out / name, _for_suite(writer, tests, compact)).write(results)
    XccdfOutput("xccdf", out / XCCDF, per_host=not compact).write(results)
    return [*(out / name for name in WRITERS), out / XCCDF, *([] if compact else [host_xccdf_dir(out / XCCDF)])]


def _read(paths: Sequence[Path]) -> tuple[RunResults, FleetShape]:
    """`merged`, without the cycle collector: millions of records, none in a cycle, would be
    traversed again and again as they are made (half the reading time), and then by every
    collection while the outputs are written: frozen out of its sight once read."""
    with uncollected():
        try:
            return merged(paths)
        finally:
            gc.freeze()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cisaudit.plugin.merge", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="every shard's results.json")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="directory of the outputs (default reports)")
    parser.add_argument("--suite", type=Path, default=SUITE, help=f"the suite's test file (default {SUITE})")
    args = parser.parse_args(argv)
    try:
        results, shape = _read(args.results)
    except ResultsError as exc:
        print(f"cisaudit merge: {exc}", file=sys.stderr)
        return USAGE_ERROR
    try:
        compact = shape.compact(len(results.info.hosts or results.hosts))
        written = write_outputs(results, args.out, suite_tests(args.suite), compact)
    except (OutputError, OSError) as exc:
        print(f"cisaudit merge: {exc}", file=sys.stderr)
        return USAGE_ERROR
    for path in written:
        print(f"wrote {path}{'/' if path.is_dir() else ''}")
    if compact:
        print(
            f"not written above --aggregate-above {shape.aggregate_above} (--fleet-reports writes them): "
            f"the per-host XCCDF files ({host_xccdf_dir(args.out / XCCDF)}/)"
        )
    print(overall_line(results))
    return 1 if results.overall in (Overall.NOT_COMPLIANT, Overall.ERRORS) else 0


if __name__ == "__main__":
    sys.exit(main())
