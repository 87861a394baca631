# Read the kernel's own rule list over netlink (AUDIT_LIST_RULES): run ON THE HOST by the probe
# where python3 is missing and perl exists (perl-base is Essential on Debian and Ubuntu; Socket
# is in its core). Read-only. The same output as kernel_rules.py, byte for byte, which says what
# it is (selftests/integration/test_kernel_rules_readers.py): one line per rule in the kernel's
# order, then "done"; exit 1 when the list cannot be read whole. Given two file names, the same
# paths and syscall numbers there as kernel_rules.py writes.
# perl-base's directory first (Debian, Ubuntu): each module is looked up along @INC, and on a host
# with thousands of rules every lookup that fails is dear (docs/kernel-behaviour.md): 120 failed
# lookups for the 9 modules loaded here, 0 with it first.
BEGIN { @INC = ((grep { /perl-base$/ } @INC), (grep { !/perl-base$/ } @INC)) }
use strict;
use Socket qw(SOCK_RAW SOL_SOCKET SO_RCVTIMEO);
my $AF_NETLINK = 16;    # linux/socket.h (Socket does not export it)

my ($LIST_RULES, $DONE, $ERROR) = (1013, 3, 2);
my %STRING = map { $_ => 1 } (13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 105, 107, 112, 210);    # values in buf
my $ALL = "\xff" x 252;
my $BIG = pack("L", 1) eq pack("N", 1);

my %SYSCALLS;    # mask -> its syscalls: thousands of rules share a few masks
my (@PATHS, %MET);    # the path values that needed no %XX, in the order first met

sub syscalls {
    my ($mask) = @_;
    return "all" if substr($mask, 0, 252) eq $ALL;
    $mask = pack("V64", unpack("L64", $mask)) if $BIG;    # 32-bit words: bit N of the whole is syscall N
    my @set;
    while ($mask =~ /[^\0]/g) {    # each byte with a syscall set, then its bits
        my ($at, $byte) = (8 * (pos($mask) - 1), ord(substr($mask, pos($mask) - 1, 1)));
        for my $bit (0 .. 7) { push @set, $at + $bit if $byte >> $bit & 1 }
    }
    return @set ? join(",", @set) : "-";
}

my %SHAPES;    # a rule's fixed part (all but its strings; thousands of rules share a few) -> shape

sub shape {    # the rule's words, and where its strings go: [word, prefix, offset, length, is a path]
    my ($head) = @_;
    my ($flags, $action, $count) = unpack("L3", $head);
    $count = 64 if $count > 64;
    # struct audit_rule_data: 3 words, mask[64], fields[64] at 268, values[64] at 524,
    # fieldflags[64] at 780, buflen, buf at 1040. Only the rule's own fields are unpacked.
    my @fvo = $count ? unpack("\@268 L$count \@524 L$count \@780 L$count", $head) : ();
    my $mask = substr($head, 12, 256);
    my @words = ($flags, $action, $SYSCALLS{$mask} //= syscalls($mask));
    my @strings;
    my $offset = 1040;
    for my $i (0 .. $count - 1) {
        my $field = $fvo[$i] & ~0x7F000000 & 0xFFFFFFFF;
        my $value = $fvo[$count + $i];
        my $prefix = "$field:" . (($fvo[2 * $count + $i] & 0x7F000000) >> 24) . ":";
        if ($STRING{$field}) {
            push @strings, [scalar(@words), $prefix, $offset, $value, $field == 105 || $field == 107];
            $offset += $value;
            push @words, $prefix;
        } else {
            push @words, "$prefix$value";
        }
    }
    return [\@words, \@strings];
}

sub rule_line {
    my ($data) = @_;
    my $head = substr($data, 0, 1040);
    my $shape = $SHAPES{$head};
    if (!$shape) {
        $shape = shape($head);
        $SHAPES{$head} = $shape if keys(%SHAPES) < 4096;
    }
    my ($template, $strings) = @$shape;
    return join(" ", @$template) unless @$strings;
    my @words = @$template;
    for my $string (@$strings) {
        my ($word, $prefix, $offset, $length, $path) = @$string;
        my $raw = $offset < length($data) ? substr($data, $offset, $length) : "";
        $raw =~ s/([^A-Za-z0-9_.~\/:\@=+-])/sprintf("%%%02X", ord($1))/ge;
        $words[$word] = "$prefix$raw";
        push @PATHS, $raw if $path && $raw !~ /%/ && !$MET{$raw}++;
    }
    return join(" ", @words);
}

sub write_names {    # the paths met, and the syscall numbers of every mask, to the probe's two files
    my ($paths, $numbers) = @_;
    my %number = map { $_ => 1 } map { split(/,/) } grep { !/^(all|-)$/ } values %SYSCALLS;
    for ([$paths, @PATHS], [$numbers, sort { $a <=> $b } keys %number]) {
        my ($name, @lines) = @$_;
        open(my $out, ">", $name) or exit 1;
        print $out map { "$_\n" } @lines;
        close($out) or exit 1;
    }
}

socket(my $sock, $AF_NETLINK, SOCK_RAW, 9) or exit 1;    # NETLINK_AUDIT
# 5 s for each receive, as kernel_rules.py's SO_RCVTIMEO: a kernel that stops answering ends the
# read, while a slow guest decoding thousands of rules does not (a total alarm did, under load).
setsockopt($sock, SOL_SOCKET, SO_RCVTIMEO, pack("l! l!", 5, 0)) or exit 1;
bind($sock, pack("S S L L", $AF_NETLINK, 0, 0, 0)) or exit 1;
send($sock, pack("L S S L L", 16, $LIST_RULES, 0x1 | 0x4, 1, 0), 0) or exit 1;    # NLM_F_REQUEST | NLM_F_ACK
my @lines;
while (1) {
    defined(recv($sock, my $chunk, 1 << 20, 0)) or exit 1;
    while (length($chunk) >= 16) {
        my ($length, $type) = unpack("L S", $chunk);
        exit 1 if $length < 16;
        my $body = substr($chunk, 16, $length - 16);
        if ($type == $DONE) {
            write_names(@ARGV) if @ARGV == 2;
            print join("\n", @lines, "done"), "\n";
            exit 0;
        }
        exit 1 if $type == $ERROR && unpack("l", $body) != 0;
        push @lines, rule_line($body) if $type == $LIST_RULES;
        my $next = ($length + 3) & ~3;
        $chunk = $next < length($chunk) ? substr($chunk, $next) : "";
    }
}
