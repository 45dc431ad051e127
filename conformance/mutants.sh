#!/usr/bin/env bash
# Mutation testing of the server's session and sync code, with the conformance server suite as the
# only test: a mutant counts as killed when `magpie-conformance`'s server suite, run against the
# mutated in-process magpied, fails (or hangs past the timeout). Not part of CI: a full run builds
# and runs the suite once per mutant (about 15-50 s each on 2 cores).
#
#   conformance/mutants.sh                 # every mutant of the default files
#   SHARD=0/2 conformance/mutants.sh       # a uniform half (round-robin), for a shorter run
#   FILES="crates/magpied/src/hub.rs" conformance/mutants.sh
#   OUT=/tmp/mutants conformance/mutants.sh
#
# It mutates a fresh clone of HEAD, so uncommitted work and other builds in the checkout are left
# alone. Needs cargo-mutants (installed here if missing).
set -euo pipefail

root=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
files=${FILES:-"crates/magpied/src/handlers.rs crates/magpie-session/src/server.rs"}
out=${OUT:-"$root/target/mutants"}
timeout=${TIMEOUT:-120}

if ! command -v cargo-mutants >/dev/null; then
    cargo install --locked cargo-mutants
fi

src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git clone -q "$root" "$src"

args=(--test-package magpie-conformance
    --cargo-test-arg=--test --cargo-test-arg=suite
    --cargo-test-arg=server_suite_against_magpied
    --timeout "$timeout" --build-timeout 600 -o "$out"
    # The fault switches (feature `faults`) are the suite's own test instruments, not server code.
    --exclude-re 'fault_')
for f in $files; do args+=(-f "$f"); done
if [[ -n ${SHARD:-} ]]; then args+=(--shard "$SHARD" --sharding round-robin); fi

mkdir -p "$out"
echo "mutating: $files${SHARD:+ (shard $SHARD)}; report in $out/mutants.out" >&2
# Debug info off: every mutant relinks the suite, and linking is most of a rebuild.
(cd "$src" && CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_TEST_DEBUG=0 cargo mutants "${args[@]}") || true

count() { [[ -f "$out/mutants.out/$1.txt" ]] && grep -c . "$out/mutants.out/$1.txt" || echo 0; }
caught=$(count caught)
missed=$(count missed)
timeouts=$(count timeout)
unviable=$(count unviable)
viable=$((caught + missed + timeouts))
echo
echo "| outcome | mutants |"
echo "|---|---|"
echo "| caught (suite failed) | $caught |"
echo "| timeout (suite hung, counted as killed) | $timeouts |"
echo "| missed | $missed |"
echo "| unviable (did not build, not counted) | $unviable |"
if ((viable > 0)); then
    echo
    echo "killed: $((caught + timeouts)) of $viable viable mutants ($(((caught + timeouts) * 1000 / viable / 10)).$(((caught + timeouts) * 1000 / viable % 10))%)"
fi
if ((missed > 0)); then
    echo
    echo "missed:"
    sed 's/^/  /' "$out/mutants.out/missed.txt"
fi
