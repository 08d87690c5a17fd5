#!/usr/bin/env bats
# Documentation generated from the option table stays in sync with it.

load helper

setup() {
    mesh_setup
    MESHCTL="${MESH_BUILD_DIR:-$MESH_REPO_ROOT/build}/meshctl"
}

@test "README's option table is meshctl config doc" {
    run "$MESHCTL" config doc
    assert_success
    while IFS= read -r line; do
        grep -qxF -- "$line" "$MESH_REPO_ROOT/README.md" || fail "README.md lacks: $line"
    done <<<"$output"
}

@test "etc/mesh.conf is meshctl config template and is valid" {
    run "$MESHCTL" config template
    assert_success
    diff -u "$MESH_REPO_ROOT/etc/mesh.conf" <(printf '%s\n' "$output")
    run "$MESHCTL" config check "$MESH_REPO_ROOT/etc/mesh.conf"
    assert_success
}
