"""The shell wrapper that SSM runs for each command, and the decoder for what it prints.

GetCommandInvocation returns stdout and stderr as text cut at 24,000 and 8,000 characters, and
the agent gives some exit codes a meaning of its own (194 reboots the instance). So the wrapper
runs the real command with its streams in temp files, always exits 0, and prints one ASCII frame:

    CISAUDIT-SSM1 <nonce> <b64 length> <temp dir> <sha256 of the b64>
    <base64, at most one chunk>
    CISAUDIT-SSM1 <nonce> END

The base64 is of gzip of b"<rc> <stdout length> <stderr length>\\n" + stdout + stderr, so binary
and non-UTF-8 output survive exactly. Base64 longer than one chunk stays in <temp dir>/b on the
instance, and `fetch_script` prints the later chunks, one per command.
"""

import base64
import binascii
import hashlib
import math
import re
import zlib
from dataclasses import dataclass

from cisaudit.host.shell import compose

MAGIC = "CISAUDIT-SSM1"
# Base64 characters per response: with the header and END lines it stays under 24,000.
CHUNK = 22_000
_INNER_HEADER_MAX = 64  # "<rc> <stdout length> <stderr length>\n"
_GZIP_SLACK = 1024  # gzip header, trailer and stored-block headers
_DIR = re.compile(r"/[\w./-]*/cisaudit-ssm\.\w+")


class FrameError(ValueError):
    """The output holds no intact frame (missing, cut short, or corrupt)."""


@dataclass(frozen=True)
class Header:
    size: int
    directory: str
    sha256: str
    first: str


def wrapper_script(command: str, nonce: str, chunk: int | None = CHUNK) -> str:
    """POSIX sh (cisaudit/host/scripts/ssm-wrapper.sh) that runs `command` and prints its frame;
    chunk=None prints all of it inline."""
    values = {
        "CISAUDIT_FRAME_MAGIC": MAGIC,
        "CISAUDIT_FRAME_NONCE": nonce,
        "CISAUDIT_FRAME_COMMAND": command,
        "CISAUDIT_FRAME_CHUNK": "" if chunk is None else str(int(chunk)),
    }
    return compose(values, "ssm-wrapper.sh")


def fetch_script(directory: str, nonce: str, index: int, last: bool, chunk: int = CHUNK) -> str:
    """POSIX sh (cisaudit/host/scripts/ssm-fetch.sh) that prints chunk `index` of a spilled frame;
    the last fetch removes it."""
    if not _DIR.fullmatch(directory):
        raise FrameError(f"refusing unexpected temp dir {directory!r}")
    values = {
        "CISAUDIT_FRAME_MAGIC": MAGIC,
        "CISAUDIT_FRAME_NONCE": nonce,
        "CISAUDIT_FRAME_DIR": directory,
        "CISAUDIT_FRAME_INDEX": str(int(index)),
        "CISAUDIT_FRAME_LAST": "1" if last else "0",
        "CISAUDIT_FRAME_CHUNK": str(int(chunk)),
    }
    return compose(values, "ssm-fetch.sh")


def _unframe(text: str, nonce: str) -> tuple[list[str], str]:
    start = text.find(f"{MAGIC} {nonce} ")
    if start < 0:
        raise FrameError("no frame header in stdout")
    head_end = text.find("\n", start)
    end = text.find(f"\n{MAGIC} {nonce} END", head_end)
    if head_end < 0 or end < 0:
        raise FrameError("frame cut short (no END line)")
    return text[start:head_end].split()[2:], text[head_end + 1 : end]


def read_result(text: str, nonce: str) -> Header:
    fields, body = _unframe(text, nonce)
    if len(fields) != 3 or not fields[0].isdigit() or len(fields[2]) != 64:
        raise FrameError(f"malformed frame header {fields!r}")
    return Header(int(fields[0]), fields[1], fields[2], body)


def bound(header: Header, reported: str, nonce: str) -> bool:
    """Whether `header` (read from S3) is the one in the stdout the service reports for the same
    instance: the same length, the same sha256 of the body, the same temp dir (mktemp's random name:
    a nonce each instance makes for itself). Another instance cannot make a frame that passes."""
    first = reported.split("\n", 1)[0].split(" ")
    return first == [MAGIC, nonce, str(header.size), header.directory, header.sha256]


def read_chunk(text: str, nonce: str, index: int) -> str:
    fields, body = _unframe(text, nonce)
    if fields != [str(index)]:
        raise FrameError(f"expected chunk {index}, got header {fields!r}")
    return body


class OutputTooLarge(FrameError):
    """The frame holds (or says it holds) more than the caller's limit."""


def max_b64_size(max_output: int) -> int:
    """The longest base64 a frame of max_output bytes can need (incompressible data, gzip and
    inner header overhead)."""
    return 4 * math.ceil((max_output + max_output // 1000 + _GZIP_SLACK) / 3)


def decode(b64: str, sha256: str, max_output: int) -> tuple[int, bytes, bytes]:
    """Return (rc, stdout, stderr) from the whole base64 text of a frame; never inflates more
    than max_output bytes of streams (130 KB of base64 can hold 100 MB of gzip)."""
    if hashlib.sha256(b64.encode()).hexdigest() != sha256:
        raise FrameError("sha256 mismatch")
    limit = max_output + _INNER_HEADER_MAX
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        raw = inflate.decompress(base64.b64decode(b64, validate=True), limit + 1)
    except (binascii.Error, zlib.error) as exc:
        raise FrameError(f"undecodable frame: {exc}") from exc
    if len(raw) > limit:
        raise OutputTooLarge(f"command output over the limit of {max_output} bytes (--max-output-mb)")
    if not inflate.eof:
        raise FrameError("undecodable frame: gzip stream cut short")
    head, _, rest = raw.partition(b"\n")
    try:
        rc, out_len, err_len = (int(x) for x in head.split())
    except ValueError as exc:
        raise FrameError(f"malformed inner header {head[:80]!r}") from exc
    if len(rest) != out_len + err_len:
        raise FrameError("stream lengths do not match")
    return rc, rest[:out_len], rest[out_len:]
