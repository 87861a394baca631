"""--ssm-instances-file (cisaudit/plugin/instance_list.py): the list job's file, read fail-closed
as untrusted input, and the list job (cisaudit/plugin/ssm_list.py) that writes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from botocore.stub import Stubber

from cisaudit.host.ssm.backend import aws_client
from cisaudit.model.shard import Shard
from cisaudit.plugin import ssm_list
from cisaudit.plugin.instance_list import parse, read, render
from cisaudit.plugin.options import OptionError
from selftests.suite_runner import REPO

IDS = [f"i-{n:017x}" for n in range(1, 6)] + ["mi-0123456789abcdef0", "i-0123abcd"]


def test_the_list_jobs_file_reads_back_as_its_ids_in_their_order() -> None:
    text = render(IDS, "listed=2026-12-05T10:00:00Z region=eu-west-1 targets=tag:Role=docker-host")
    assert text.splitlines()[0].startswith(f"# cisaudit-instances count={len(IDS)} listed=")
    assert parse(text, "f") == IDS


def test_a_hand_written_list_may_have_comments_blank_lines_and_spaces() -> None:
    assert parse(f"# from the CMDB\n\n  {IDS[0]}  \r\n{IDS[1]}\n# end\n", "f") == IDS[:2]


def test_every_shard_of_one_file_together_audits_each_id_once() -> None:
    ids = parse(render([f"i-{n:017x}" for n in range(1000)], ""), "f")
    shares = [Shard(k, 8).instances(ids) for k in range(1, 9)]
    assert sorted(i for share in shares for i in share) == sorted(ids)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{IDS[0]}\ni-12345\n", r"f:2: 'i-12345' is not a managed instance id"),
        (f"{IDS[0]}\nI-0123456789ABCDEF0\n", r"f:2: 'I-0123456789ABCDEF0' is not a managed instance id"),
        (f"{IDS[0]},{IDS[1]}\n", r"f:1: .* is not a managed instance id"),
        ("tag:Role=docker-host\n", r"f:1: 'tag:Role=docker-host' is not a managed instance id"),
        (f"ssm://{IDS[0]}\n", r"f:1: .* is not a managed instance id"),
        (f"{IDS[0]} # web\n", r"f:1: .* is not a managed instance id"),
        ("i-0123456789abcdef0; rm -rf /\n", r"f:1: .* is not a managed instance id"),
        (f"{IDS[0]}\n{IDS[1]}\n{IDS[0]}\n", rf"f:3: {IDS[0]} is listed twice"),
        ("", r"f holds no instance id"),
        ("# cisaudit-instances count=0\n\n# nothing\n", r"f holds no instance id"),
        (render(IDS, "")[: -len(IDS[-1]) - 1], r"f holds 6 instance ids, its header counts 7 \(cut short\?\)"),
        (render(IDS[:2], "") + render(IDS[2:4], ""), r"f:4: a second list header \(two files joined\?\)"),
    ],
)
def test_anything_but_instance_ids_is_one_line_that_says_what_to_do(text: str, message: str) -> None:
    with pytest.raises(OptionError, match=rf"^--ssm-instances-file: {message}") as caught:
        parse(text, "f")
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith(("(one instance id a line)", "take the list job's whole file"))


def test_a_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    binary = tmp_path / "ids.bin"
    binary.write_bytes(b"\xff\xfe" + IDS[0].encode())
    for path, message in [
        (str(tmp_path / "missing.txt"), "No such file or directory; give the FILE the list job wrote"),
        (str(tmp_path), "Is a directory"),
        (str(binary), "is not UTF-8 text"),
        ("  ", "is empty (an unset variable?)"),
    ]:
        with pytest.raises(OptionError, match=r"^--ssm-instances-file") as caught:
            read(path)
        assert message in str(caught.value)


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bad_file_is_a_usage_error_before_any_host(tmp_path: Path) -> None:
    bad = tmp_path / "instances.txt"
    bad.write_text(f"{IDS[0]}\nweb1\n")
    proc = _pytest(f"--ssm-instances-file={bad}", "--shard=1/2")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        f"ERROR: --ssm-instances-file: {bad}:2: 'web1' is not a managed instance id (i-0123456789abcdef0); "
        "write it with python -m cisaudit.plugin.ssm_list (one instance id a line)"
    )


def test_the_file_and_ssm_targets_together_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "instances.txt"
    good.write_text(render(IDS, ""))
    proc = _pytest(f"--ssm-instances-file={good}", "--ssm-targets=tag:Role=docker-host")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--ssm-instances-file and --ssm-targets both name the instances" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


def _page(stub: Stubber, value: str, infos: list[dict[str, str]]) -> None:
    params = {"Filters": [{"Key": "tag:Role", "Values": [value]}], "MaxResults": 50}
    stub.add_response("describe_instance_information", {"InstanceInformationList": infos}, params)


def test_the_list_job_writes_every_listed_instance_offline_ones_too(aws: None, tmp_path: Path) -> None:
    """An offline member stays in the file: its shard reports it as that host's error."""
    out = tmp_path / "instances.txt"
    with Stubber(aws_client("ssm", "us-east-1", None)) as stub:
        _page(
            stub,
            "docker",
            [{"InstanceId": IDS[0], "PingStatus": "Online"}, {"InstanceId": IDS[1], "PingStatus": "ConnectionLost"}],
        )
        code = ssm_list.main(
            [f"--ssm-targets=tag:Role=docker,{IDS[2]},{IDS[0]}", "--ssm-region=us-east-1", f"--out={out}"]
        )
    assert code == 0 and read(str(out)) == IDS[:3]
    assert not list(tmp_path.glob(".*partial"))


def test_the_list_job_refuses_a_tag_nothing_has_and_writes_no_file(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "instances.txt"
    with Stubber(aws_client("ssm", "us-east-1", None)) as stub:
        _page(stub, "none", [])
        code = ssm_list.main(["--ssm-targets=tag:Role=none", "--ssm-region=us-east-1", f"--out={out}"])
    assert code == 4 and not out.exists()
    assert capsys.readouterr().err == (
        "cisaudit ssm_list: --ssm-targets: tag:Role=none: no managed instance has this tag; "
        "correct the target, or leave it out\n"
    )
