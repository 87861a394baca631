# Read the kernel's own rule list over netlink (AUDIT_LIST_RULES): run ON THE HOST by the probe
# where python3 is missing and perl exists (perl-base is Essential on Debian and Ubuntu; Socket
# is in its core). Read-only. The same output as kernel_rules.py, byte for byte
# (selftests/integration/test_kernel_rules_readers.py), one line per rule in the kernel's order:
#     FILTER ACTION KIND HEXPATH      (KIND: dir, path or none; HEXPATH: "-" without a path)
# then "done"; nothing at all when the list cannot be read whole.
use strict;
use Socket qw(SOCK_RAW SOL_SOCKET SO_RCVTIMEO);
use constant AF_NETLINK => 16;    # linux/socket.h (Socket does not export it)

my ($LIST_RULES, $DONE, $ERROR, $WATCH, $DIR) = (1013, 3, 2, 105, 107);
my %STRING = map { $_ => 1 } (13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 105, 107, 112, 210);    # values in buf
my @FILTERS = qw(user task entry watch exit exclude filesystem io_uring);
my @ACTIONS = qw(never possible always);

sub rule_line {
    my ($data) = @_;
    my ($flags, $action, $count) = unpack("L3", $data);
    $count = 64 if $count > 64;
    # struct audit_rule_data: 3 words, mask[64], fields[64] at 268, values[64] at 524, buf at 1040.
    # Only the rule's own fields are unpacked (a third of the reader's time at 5,000 rules under TCG).
    my @fv = unpack("\@268 L$count \@524 L$count", $data);
    my ($kind, $path, $offset) = ("none", "", 1040);
    for my $i (0 .. $count - 1) {
        my $field = $fv[$i] & ~0x7F000000 & 0xFFFFFFFF;
        next unless $STRING{$field};
        my $text = $offset < length($data) ? substr($data, $offset, $fv[$count + $i]) : "";
        $offset += $fv[$count + $i];
        ($kind, $path) = ($field == $DIR ? "dir" : "path", $text) if $field == $WATCH || $field == $DIR;
    }
    my $name = $FILTERS[$flags & 0x07] // ($flags & 0x07);
    my $verb = $action < 3 ? $ACTIONS[$action] : $action;
    return join(" ", $name, $verb, $kind, length($path) ? unpack("H*", $path) : "-");
}

socket(my $sock, AF_NETLINK, SOCK_RAW, 9) or exit 1;    # NETLINK_AUDIT
# 5 s for each receive, as kernel_rules.py's SO_RCVTIMEO: a kernel that stops answering ends the
# read, while a slow guest decoding thousands of rules does not (a total alarm did, under load).
setsockopt($sock, SOL_SOCKET, SO_RCVTIMEO, pack("l! l!", 5, 0)) or exit 1;
bind($sock, pack("S S L L", AF_NETLINK, 0, 0, 0)) or exit 1;
send($sock, pack("L S S L L", 16, $LIST_RULES, 0x1 | 0x4, 1, 0), 0) or exit 1;    # NLM_F_REQUEST | NLM_F_ACK
my @lines;
while (1) {
    defined(recv($sock, my $chunk, 1 << 20, 0)) or exit 1;
    while (length($chunk) >= 16) {
        my ($length, $type) = unpack("L S", $chunk);
        exit 0 if $length < 16;
        my $body = substr($chunk, 16, $length - 16);
        if ($type == $DONE) {
            print join("\n", @lines, "done"), "\n";
            exit 0;
        }
        exit 0 if $type == $ERROR && unpack("l", $body) != 0;
        push @lines, rule_line($body) if $type == $LIST_RULES;
        my $next = ($length + 3) & ~3;
        $chunk = $next < length($chunk) ? substr($chunk, $next) : "";
    }
}
