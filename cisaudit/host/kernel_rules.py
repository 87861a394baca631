"""Read the kernel's own rule list over netlink (AUDIT_LIST_RULES): run ON THE HOST by the probe
where python3 exists. Python 3.6+, standard library only, read-only.

Each rule whole (struct audit_rule_data), so that the probe needs no `auditctl -l`: the listing is
rendered from these lines (cisaudit/model/kernel_list.py, docs/kernel-behaviour.md). They also say
what `auditctl -l` cannot: `always` from `never`, `path=` from `dir=`. One line per rule, in the
kernel's order (the order `auditctl -l` prints), then `done`; exit 1 when the list was not read whole:
    FLAGS ACTION MASK ID:OP:VALUE ...
FLAGS and ACTION as the kernel holds them; MASK `all` (words 0-62 all set, as auditctl tests it),
`-` (none) or the syscall numbers set, ascending and comma-separated; then each rule field: its
number, its operator (fieldflags >> 24) and its value, colon-separated (no mask holds a colon),
the value a number or, for string fields, the bytes with each one outside [A-Za-z0-9_.~/:@=+-]
as %XX.
Given two file names (the probe's), it also writes there, once the list is read whole, the path=
and dir= values (the watches' too) that needed no %XX, each once in the kernel's order, and the
syscall numbers its masks hold, ascending: the probe stats those paths and names those numbers
(a pass over thousands of its lines in the probe's awk cost a test VM more than these lines do here).
"""

import socket
import struct
import sys

AUDIT_LIST_RULES, NLMSG_DONE, NLMSG_ERROR = 1013, 3, 2
STRING_FIELDS = {13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 105, 107, 112, 210}  # values in buf
OPERATORS = 0x7F000000
ALL = b"\xff" * 252
SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~/:@=+-"
SAFE_BYTES = frozenset(SAFE)
PATH_FIELDS = {105, 107}  # AUDIT_WATCH (path=, -w), AUDIT_DIR (dir=)
SYSCALLS = {}  # type: dict[bytes, str]  # mask -> its syscalls: thousands of rules share a few masks
TEMPLATES = {}  # type: dict[bytes, tuple[list[str], list[tuple[int, str, int, int, bool]]]]
PATHS = {}  # type: dict[str, None]  # the path values that needed no %XX, in the order first met


def text(raw):  # type: (bytes) -> str
    if not raw.translate(None, SAFE):
        return raw.decode("ascii")
    return "".join(chr(b) if b in SAFE_BYTES else f"%{b:02X}" for b in raw)


def syscalls(mask):  # type: (bytes) -> str
    if mask[:252] == ALL:
        return "all"
    if sys.byteorder == "big":  # 32-bit words: bit N of the little-endian whole is syscall N
        mask = struct.pack("<64I", *struct.unpack("=64I", mask))
    bits, number = [], int.from_bytes(mask, "little")
    while number:
        low = number & -number
        bits.append(str(low.bit_length() - 1))
        number ^= low
    return ",".join(bits) or "-"


def template(head):  # type: (bytes) -> tuple[list[str], list[tuple[int, str, int, int, bool]]]
    """A rule's words from its fixed part, and where its strings go: (word, prefix, offset, length,
    whether it is a path)."""
    flags, action, count = struct.unpack_from("=III", head, 0)
    count = min(count, 64)
    # struct audit_rule_data: 3 words, mask[64], fields[64] at 268, values[64] at 524,
    # fieldflags[64] at 780, buflen, buf at 1040.
    words_of = f"={count}I"
    fields = struct.unpack_from(words_of, head, 268)
    values = struct.unpack_from(words_of, head, 524)
    operators = struct.unpack_from(words_of, head, 780)
    mask = head[12:268]
    if mask not in SYSCALLS:
        SYSCALLS[mask] = syscalls(mask)
    words, strings, offset = [str(flags), str(action), SYSCALLS[mask]], [], 1040
    for i in range(count):  # zip(strict=) is 3.10's
        field, value = fields[i] & ~OPERATORS, values[i]
        prefix = f"{field}:{(operators[i] & OPERATORS) >> 24}:"
        if field in STRING_FIELDS:
            strings.append((len(words), prefix, offset, value, field in PATH_FIELDS))
            offset += value
        words.append(prefix if field in STRING_FIELDS else prefix + str(value))
    return words, strings


def rule_line(data):  # type: (bytes) -> str
    head = data[:1040]  # all but the strings: thousands of rules share a few (their lengths too)
    shape = TEMPLATES.get(head)
    if shape is None:
        shape = template(head)
        if len(TEMPLATES) < 4096:
            TEMPLATES[head] = shape
    words, strings = shape
    if strings:
        words = words[:]
        for word, prefix, offset, length, path in strings:
            value = text(data[offset : offset + length])
            words[word] = prefix + value
            if path and "%" not in value:
                PATHS[value] = None
    return " ".join(words)


def write_names(paths, numbers):  # type: (str, str) -> None
    """The paths met, and the syscall numbers of every mask, to the probe's two files."""
    met = {int(n) for masked in SYSCALLS.values() if masked not in ("all", "-") for n in masked.split(",")}
    for name, lines in ((paths, list(PATHS)), (numbers, [str(n) for n in sorted(met)])):
        with open(name, "w") as out:
            out.write("".join(line + "\n" for line in lines))


def main():  # type: () -> int
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)  # NETLINK_AUDIT
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 5, 0))
    sock.bind((0, 0))
    sock.send(struct.pack("=IHHII", 16, AUDIT_LIST_RULES, 0x1 | 0x4, 1, 0))  # NLM_F_REQUEST | NLM_F_ACK
    lines = []  # type: list[str]
    buf = bytearray(1 << 20)
    while True:
        chunk = bytes(buf[: sock.recv_into(buf)])
        while len(chunk) >= 16:
            length, kind = struct.unpack_from("=IH", chunk, 0)
            if length < 16:
                return 1
            body = chunk[16:length]
            if kind == NLMSG_DONE:
                if len(sys.argv) == 3:
                    write_names(sys.argv[1], sys.argv[2])
                print("\n".join(lines + ["done"]))
                return 0
            if kind == NLMSG_ERROR and struct.unpack_from("=i", body, 0)[0] != 0:
                return 1
            if kind == AUDIT_LIST_RULES:
                lines.append(rule_line(body))
            chunk = chunk[(length + 3) & ~3 :]


sys.exit(main())
