#!/usr/bin/env bash
# The project's one test command: fmt, clippy and the whole test suite against
# throwaway Redis / PostgreSQL / PgBouncer (see scripts/services.sh).
#
#   scripts/test.sh                          # everything
#   scripts/test.sh --quick                  # skip fmt and clippy
#   scripts/test.sh --quick -- -p perf-tests # arguments after -- go to `cargo test`
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=0
test_args=()
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1; shift ;;
        --) shift; test_args=("$@"); break ;;
        -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "scripts/test.sh: unknown argument '$1' (cargo test arguments go after --)" >&2; exit 2 ;;
    esac
done

# shellcheck source=scripts/services.sh
source scripts/services.sh
perf_services_install
# EXIT does the cleanup; INT/TERM just exit so it runs once, with the usual status.
trap perf_services_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
perf_services_start

# Passed through as is: tests may behave differently on CI.
export CI="${CI:-}"

# trybuild builds its UI crates with its own manifest, which leaves out the
# workspace's [profile.dev]; the environment reaches it. Same value as
# Cargo.toml, so the workspace's own builds are not invalidated by it.
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
# A CI build starts clean and runs once: incremental state would only take disk.
if [ -n "$CI" ]; then
    export CARGO_INCREMENTAL=0
fi

step() {
    local name=$1 start=$SECONDS rc=0
    shift
    echo "==> $name"
    "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "==> $name: ok ($((SECONDS - start)) s)"
    else
        echo "==> $name: FAILED with status $rc ($((SECONDS - start)) s)"
    fi
    return "$rc"
}

if [ "$quick" -eq 0 ]; then
    step "cargo fmt" cargo fmt --all -- --check
    step "cargo clippy" cargo clippy --workspace --all-targets --all-features -- -D warnings
    # Each optional backend must build alone (its cfg guards, its errors).
    for features in "" "macros" "prometheus" "axum" "redis" "postgres" "http" "bench" "ai"; do
        step "cargo check perf-runtime --features '$features'" \
            cargo check -q -p perf-runtime --no-default-features --features "$features"
    done
    step "cargo doc" env RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps -p perf-runtime -p perf-macros --all-features
fi

# `--workspace` would override a package selection (-p) given after --; keep it for --exclude, which needs it.
workspace=(--workspace)
for arg in "${test_args[@]}"; do
    [ "$arg" = -- ] && break
    case $arg in
        -p | -p?* | --package | --package=* | --workspace | --all) workspace=() ;;
    esac
done
tests=0
step "cargo test" cargo test "${workspace[@]}" --all-features "${test_args[@]}" || tests=$?
# The build's footprint, so a CI disk running short shows before it fails.
if [ -n "$CI" ]; then
    du -sh "${CARGO_TARGET_DIR:-target}" 2>/dev/null || true
fi
exit "$tests"
