#!/usr/bin/perl
# Hash / regex / string heavy perl workload with deterministic output
# (own LCG, sorted hash traversal; no dependence on hash seed).
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $n = shift // 200000;
my $seed = 12345;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed >> 12; }

my @syll = qw(ka lo mi nu pe ri sa tu ve xo ya ze bri str qua ph);
my (%count, %first, @lines);
for my $i (1 .. $n) {
    my $w = join '', map { $syll[rnd() % @syll] } 1 .. (1 + rnd() % 5);
    $count{$w}++;
    $first{$w} //= $i;
    push @lines, sprintf("%06d %s %s", $i, $w, ucfirst(reverse $w)) if $i % 3 == 0;
}

# regex heavy rewriting
my $text = join "\n", @lines;
(my $t2 = $text) =~ s/(\d+) (\w+) (\w+)/$3-$1-$2/g;
$t2 =~ s/([aeiou])\1/<$1$1>/g;
my @caps = ($t2 =~ /([A-Z][a-z]{3,})/g);
my %caplen;
$caplen{length $_}++ for @caps;

# string building, split/join, nested structures
my %tree;
for my $w (keys %count) {
    my @p = split //, $w;
    my $node = \%tree;
    $node = ($node->{$_} //= {}) for @p[0 .. ($#p < 3 ? $#p : 3)];
    push @{ $node->{'@'} }, $w;
}
sub walk {
    my ($node) = @_;
    my $c = 0;
    for my $k (sort keys %$node) {
        $c += $k eq '@' ? scalar @{ $node->{$k} } : walk($node->{$k});
    }
    return $c;
}

# delete half of the hash and rebuild with longer keys
for my $w (sort keys %count) { delete $count{$w} if $first{$w} % 2 }
$count{ $_ . ("x" x ($_ % 40)) } = $_ % 97 for 1 .. 20000;

my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 9];
print "distinct words: ", scalar(keys %first), "\n";
print "tree leaves: ", walk(\%tree), "\n";
print "top: ", join(' ', map { "$_=$count{$_}" } @top), "\n";
print "caps by length: ", join(' ', map { "$_:$caplen{$_}" } sort { $a <=> $b } keys %caplen), "\n";
print "md5 text: ", md5_hex($t2), "\n";
print "md5 keys: ", md5_hex(join ',', sort keys %count), "\n";
