"""Read the kernel's own rule list over netlink (AUDIT_LIST_RULES): run ON THE HOST by the probe
where python3 exists. Python 3.6+, standard library only, read-only.

`auditctl -l` prints `always` and `never` watches, and `path=` and `dir=` watches, alike
(docs/kernel-behaviour.md); the kernel's struct audit_rule_data says which each rule is.
One line per rule, in the kernel's order (the order `auditctl -l` prints):
    FILTER ACTION KIND HEXPATH      (KIND: dir, path or none; HEXPATH: "-" without a path)
"""

import socket
import struct

AUDIT_LIST_RULES, NLMSG_DONE, NLMSG_ERROR = 1013, 3, 2
WATCH, DIR = 105, 107
STRING_FIELDS = {13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 105, 107, 112, 210}  # values in buf
FILTERS = {0: "user", 1: "task", 2: "entry", 3: "watch", 4: "exit", 5: "exclude", 6: "filesystem", 7: "io_uring"}
ACTIONS = {0: "never", 1: "possible", 2: "always"}
OPERATORS = 0x7F000000


def rule_line(data):  # type: (bytes) -> str
    flags, action, count = struct.unpack_from("=III", data, 0)
    fields = struct.unpack_from("=64I", data, 12 + 256)
    values = struct.unpack_from("=64I", data, 12 + 512)
    buf = data[12 + 1024 + 4 :]
    kind, path, offset = "none", b"", 0
    for i in range(min(count, 64)):
        field = fields[i] & ~OPERATORS
        if field in STRING_FIELDS:
            text = buf[offset : offset + values[i]]
            offset += values[i]
            if field in (WATCH, DIR):
                kind, path = ("dir" if field == DIR else "path"), text
    name = FILTERS.get(flags & 0x07, str(flags & 0x07))
    return "{} {} {} {}".format(name, ACTIONS.get(action, str(action)), kind, path.hex() if path else "-")


def main():  # type: () -> None
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
                return
            body = chunk[16:length]
            if kind == NLMSG_DONE:
                print("\n".join(lines + ["done"]))
                return
            if kind == NLMSG_ERROR and struct.unpack_from("=i", body, 0)[0] != 0:
                return
            if kind == AUDIT_LIST_RULES:
                lines.append(rule_line(body))
            chunk = chunk[(length + 3) & ~3 :]


main()
