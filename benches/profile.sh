#!/usr/bin/env bash
# Where magpied's CPU goes under load: a perf profile of a fresh release magpied while
# `magpie-bench pairs` runs against it, as a flame graph and a table of shares by concern.
#
#   benches/profile.sh                 # writes benches/profile/magpied-pairs.svg and .md
#   PAIRS=100 MESSAGES=1000 DURABILITY=relaxed benches/profile.sh
#
# Needs perf (linux-perf / linux-tools) and inferno (`cargo install inferno`); installs inferno
# if it is missing. Samples on cpu-clock (no hardware counters needed) at 499 Hz with DWARF call
# graphs for the length of the run. Loopback only; stops what it started.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. "$root/benches/lib.sh"
pairs=${PAIRS:-100}
messages=${MESSAGES:-1000}
durability=${DURABILITY:-immediate}
out=$root/benches/profile
say() { echo "[profile] $*" >&2; }

command -v perf >/dev/null || { echo "profile.sh: perf is not installed" >&2; exit 1; }
if ! command -v inferno-collapse-perf >/dev/null; then
  say "installing inferno"
  cargo install inferno --locked -q
fi

say "building magpied and magpie-bench (release)"
cargo build --release -q -p magpied --bin magpied -p magpie-benches --bin magpie-bench
work=$(mktemp -d "${TMPDIR:-/tmp}/magpie-profile.XXXXXX")
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

secret=profile-secret-$RANDOM$RANDOM$RANDOM
start_magpied "$work/magpied.out" "$work/magpied.log" target/release/magpied --config benches/bench.toml --listen 127.0.0.1:0 \
  --data-dir "$work/data" --app "bench:$secret" --durability "$durability" ||
  { server=$server_pid; echo "profile.sh: magpied did not start" >&2; exit 1; }
server=$server_pid

say "profiling magpied ($durability) under pairs: $pairs pairs x $messages messages"
perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$server" -o "$work/perf.data" &
perf_pid=$!
sleep 0.3
target/release/magpie-bench pairs --addr "$addr" --secret "$secret" --server-pid "$server" \
  --pairs "$pairs" --messages "$messages" --json "$work/pairs.json" >"$work/pairs.txt"
kill -INT "$perf_pid"
wait "$perf_pid" || true

say "folding stacks"
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/folded" 2>/dev/null
mkdir -p "$out"
inferno-flamegraph --minwidth 0.3 \
  --title "magpied under magpie-bench pairs ($pairs pairs x $messages, $durability)" \
  <"$work/folded" >"$out/magpied-pairs.svg"

# Each stack goes to the first concern whose pattern it matches.
awk '
BEGIN {
  n = split("store: memtable inserts|Memtable::insert;" \
    "store: dedup and head lookups|WriteCtx::get|Readable>::get|stream_in|conversation_in;" \
    "store: journal write and fsync|journal::writer|sync_all|fsync;" \
    "store: applying writes (keys, records, head cache, new memory)|write::apply;" \
    "store: committing the batch (other than memtable and journal)|WriteCtx::commit;" \
    "store: commit thread, queue and replies|magpie_store::;" \
    "DEFLATE|Deflater::compress;" \
    "socket writes|sendto|tcp_sendmsg|WriteAll;" \
    "socket reads|recvfrom|tcp_recvmsg|try_read;" \
    "decoding frames and protobuf|Decoder::decode|handle_bytes|prost::;" \
    "request handlers (SEND, acks, pushes built)|magpied::handlers;" \
    "hub and mailboxes|Hub::|Mailbox|ServerConnection::push;" \
    "encoding frames|Encoder::|poll_transmit|Link::flush;" \
    "tokio runtime (scheduling, wakeups, timers)|tokio", rules, ";")
  for (i = 1; i <= n; i++) {
    split(rules[i], parts, "|")
    name[i] = parts[1]
    pat[i] = substr(rules[i], length(parts[1]) + 2)
  }
}
{
  count = $NF; stack = $0; sub(/ [0-9]+$/, "", stack); total += count
  for (i = 1; i <= n; i++) if (stack ~ pat[i]) { share[name[i]] += count; next }
  share["other"] += count
}
END {
  for (i = 1; i <= n; i++) if (share[name[i]] > 0) printf "| %s | %.1f%% |\n", name[i], 100 * share[name[i]] / total
  if (share["other"] > 0) printf "| other | %.1f%% |\n", 100 * share["other"] / total
}' "$work/folded" | sort -t'|' -k3 -rn >"$work/table"

{
  echo "# Where magpied's CPU goes under pairs"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores."
  echo "\`benches/profile.sh\` with PAIRS=$pairs MESSAGES=$messages DURABILITY=$durability: perf (cpu-clock,"
  echo "499 Hz, DWARF call graphs) on a fresh release magpied while \`magpie-bench pairs\` ran against it."
  echo "Flame graph: [magpied-pairs.svg](magpied-pairs.svg). Shares of the server's CPU samples, each"
  echo "stack counted under the first concern it matches:"
  echo
  echo "| concern | share of server CPU |"
  echo "|---|---:|"
  cat "$work/table"
  echo
  echo "The run itself:"
  echo
  echo '```'
  grep -E "msgs_per|server_cpu|generator_cpu|check" "$work/pairs.txt" || true
  echo '```'
} >"$out/magpied-pairs.md"
say "wrote $out/magpied-pairs.svg and $out/magpied-pairs.md"
cat "$out/magpied-pairs.md"
