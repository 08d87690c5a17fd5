#!/usr/bin/env bats
# The benchmark reports' figures (bench/plot, gnuplot): PSS over time comes out as an
# SVG with one line per configuration, the ratio bars as an SVG with a panel per measure
# and a bar per allocator; malformed data fails; without gnuplot bench/plot, bench/run
# and bench/mesh-report print one line saying the figure was skipped and succeed.

load helper

bats_require_minimum_version 1.5.0

setup() {
    mesh_setup
    PLOT="$MESH_REPO_ROOT/bench/plot"
    command -v gnuplot >/dev/null ||
        fail "gnuplot not found: tools/deps installs it (apt-get install gnuplot-nox)"
    NO_GNUPLOT="$BATS_TEST_TMPDIR/nowhere/gnuplot"
}

# svg_has FILE TEXT...: FILE is an SVG that shows every TEXT as a text element.
svg_has() {
    local f=$1 t
    shift
    [ -s "$f" ] || fail "$f was not written"
    grep -q '<svg' "$f" || fail "$f is not an SVG"
    for t; do
        grep -qF "<text>$t</text>" "$f" || fail "$f does not show '$t'"
    done
}

@test "bench/plot lines: one line per series, named as in the data" {
    printf 'glibc\t0\t1.5\nglibc\t0.2\t30.25\nlibmesh (default)\t0\t1.5\n' >pss.tsv
    printf '# a comment\nlibmesh MESH_PERIOD_MS=0\t0.1\t12\nlibmesh (default)\t0.2\t20\nglibc\t0.4\t31\n' >>pss.tsv
    run "$PLOT" lines out.svg "fragment: PSS over time" seconds "PSS (MiB)" pss.tsv
    assert_success
    assert_output ""
    svg_has out.svg "fragment: PSS over time" seconds "PSS (MiB)" glibc "libmesh (default)" "libmesh MESH_PERIOD_MS=0"
    [ "$(grep -o 'id="gnuplot_plot_[0-9]*"' out.svg | sort -u | wc -l)" = 3 ]
}

@test "bench/plot bars: a panel per measure, a bar per series, every group on the axis" {
    {
        printf 'time / jemalloc\tchurn\tglibc\t1.25\ntime / jemalloc\tchurn\tlibmesh\t0.9\n'
        printf 'time / jemalloc\tfrag\tlibmesh\t-\ntime / jemalloc\tgeomean\tglibc\t1.1\n'
        printf 'peak PSS / jemalloc\tchurn\tglibc\t0.95\npeak PSS / jemalloc\tfrag\tlibmesh\t0.31\n'
    } >ratios.tsv
    run "$PLOT" bars out.svg "bench/run ratios" ratio ratios.tsv
    assert_success
    svg_has out.svg "bench/run ratios" "time / jemalloc" "peak PSS / jemalloc" churn frag geomean glibc libmesh
    # two series in each of the two panels
    [ "$(grep -c 'id="gnuplot_plot_' out.svg)" = 4 ]
    # and a PNG when asked for one
    run "$PLOT" bars out.png "bench/run ratios" ratio ratios.tsv
    assert_success
    [ "$(head -c 4 out.png | tail -c 3)" = PNG ]
}

@test "bench/plot fails on malformed data and writes nothing" {
    printf 'glibc\t0\t1.5\nglibc\tsoon\t2\n' >bad.tsv
    run "$PLOT" lines out.svg t x y bad.tsv
    assert_failure
    assert_output --partial "bad.tsv line 2"
    [ ! -e out.svg ]
    : >empty.tsv
    run "$PLOT" bars out.svg t y empty.tsv
    assert_failure
    assert_output --partial "no data"
    [ ! -e out.svg ]
    run "$PLOT" lines out.txt t x y bad.tsv
    assert_failure
    assert_output --partial ".svg or .png"
}

@test "bench/plot without gnuplot: one line, success, no file" {
    printf 'glibc\t0\t1.5\n' >pss.tsv
    GNUPLOT=$NO_GNUPLOT run "$PLOT" lines out.svg t x y pss.tsv
    assert_success
    assert_output "plot skipped: $NO_GNUPLOT not found (apt-get install gnuplot-nox, or tools/deps)"
    [ ! -e out.svg ]
    GNUPLOT=$NO_GNUPLOT run "$PLOT" check
    assert_failure 1
    assert_output --partial "plot skipped:"
    run "$PLOT" check
    assert_success
    assert_output ""
}

@test "bench/run draws its ratio table, or says in one line that it cannot" {
    export BENCH_BUILD="$BATS_TEST_TMPDIR/bench" BENCH_ARGS_frag="20000 2 10 50"
    run "$MESH_REPO_ROOT/bench/run" --only frag --alloc glibc,libmesh --runs 1 --plot figs
    assert_success
    assert_line "plot: $MESH_WORK/figs/ratios.svg"
    svg_has figs/ratios.svg "time / glibc" "peak PSS / glibc" frag libmesh
    rm -r figs
    GNUPLOT=$NO_GNUPLOT run "$MESH_REPO_ROOT/bench/run" --only frag --alloc glibc,libmesh --runs 1 --plot figs
    assert_success
    [ "$(grep -c '^plot' <<<"$output")" = 1 ]
    assert_line "plot skipped: $NO_GNUPLOT not found (apt-get install gnuplot-nox, or tools/deps)"
    [ ! -e figs/ratios.svg ]
}

@test "bench/mesh-report: PSS over time from extra runs that stay out of the tables" {
    export BENCH_BUILD="$BATS_TEST_TMPDIR/bench" FRAG_ARGS="2 600"
    run --separate-stderr "$MESH_REPO_ROOT/bench/mesh-report" --only fragment --runs 1 --no-extra --plot figs
    assert_success
    assert_line "plot: $MESH_WORK/figs/pss-fragment.svg"
    svg_has figs/pss-fragment.svg glibc jemalloc "libmesh MESH_PERIOD_MS=0" "libmesh (default)"
    # every configuration was sampled, from its start, more than once
    local out res f
    out=$(sed -n 's/^libmesh mesh report: .*output in //p' <<<"$output")
    for f in glibc jemalloc mesh-off mesh; do
        [ "$(wc -l <"$out/series/fragment.$f.tsv")" -ge 2 ] || fail "fragment.$f.tsv: $(cat "$out/series/fragment.$f.tsv")"
    done
    # results.tsv holds the measured run only: t1 under four configurations and t2 under libmesh
    res=$(cut -f1-3 "$out/results.tsv" | sort -u)
    [ "$res" = "$(printf 'fragment-t1\tglibc\t1\nfragment-t1\tjemalloc\t1\nfragment-t1\tmesh\t1\nfragment-t1\tmesh-off\t1\nfragment-t2\tmesh\t1')" ] ||
        fail "results.tsv has: $res"

    GNUPLOT=$NO_GNUPLOT run --separate-stderr "$MESH_REPO_ROOT/bench/mesh-report" --only fragment --runs 1 --no-extra --plot figs2
    assert_success
    [ "$(grep -c '^plot' <<<"$output")" = 1 ]
    assert_line "plot skipped: $NO_GNUPLOT not found (apt-get install gnuplot-nox, or tools/deps)"
    [ ! -e figs2/pss-fragment.svg ]
    ! grep -q 'for the figure' <<<"$stderr"
}
