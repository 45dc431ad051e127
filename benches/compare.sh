#!/usr/bin/env bash
# Magpie side by side with mosquitto (MQTT QoS 1) and nats-server, on loopback, in one run.
#
#   benches/compare.sh            # full run: 3 repetitions, writes benches/RESULTS.md
#   QUICK=1 benches/compare.sh    # smoke test: small counts, 1 repetition (or: --quick)
#
# Installs mosquitto and nats-server (Debian packages) if missing, builds magpie-bench and magpied
# in release, and for each repetition starts each server fresh on a free 127.0.0.1 port:
#   magpie-durable  magpied, default durability (fsync before every ack), fresh data directory,
#                   with benches/bench.toml (rate limits where no scenario reaches them)
#   magpie-relaxed  the same with --durability relaxed
#   mosquitto       no persistence, unlimited inflight and queue, TCP_NODELAY
#   nats            nats-server, core NATS (no JetStream)
# then runs pairs, latency, fanout, and sync (Magpie only) against it and stops it. Then two
# control runs of mosquitto's latency, each with another process fsyncing 1,000 times a second
# beside it: on the disk (mosquitto-beside-disk-fsyncs), and on tmpfs, where an fsync writes
# nothing (mosquitto-beside-tmpfs-fsyncs): the difference is what disk writes cost a server that
# never makes any. Before each repetition's servers, `magpie-bench disk` probes fsync latency in
# the folder of the data directories. idle runs after all of those, against fresh processes of
# its own. `magpie-bench report` takes the median of the repetitions and writes the table.
# Everything started here is stopped on exit.
#
# Environment: QUICK=1, REPS=N (default 3; 1 when quick), RESULTS=FILE (default
# benches/RESULTS.md; target/compare-quick.md when quick), KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. "$root/benches/lib.sh"

quick=${QUICK:-0}
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done
[ "$quick" = 0 ] || quick=1
if [ "$quick" = 1 ]; then
  reps=${REPS:-1}
  results=${RESULTS:-target/compare-quick.md}
  pairs_args=(--pairs 10 --messages 200)
  latency_args=(--pairs 10 --rate 2000 --duration-secs 2 --warmup-secs 0.5)
  fanout_receivers=50
  fanout_magpie=100 fanout_mqtt=100 fanout_nats=200
  idle_args=(--connections 300 --hold-secs 1)
  sync_args=(--messages 1000)
  disk_args=(--duration-secs 0.5)
  beside_secs=4
else
  reps=${REPS:-3}
  results=${RESULTS:-benches/RESULTS.md}
  pairs_args=(--pairs 100 --messages 1000)
  latency_args=(--pairs 100 --rate 10000 --duration-secs 5 --warmup-secs 1)
  fanout_receivers=500
  # The figure is a rate; the message counts differ so that each run lasts a few seconds
  # (Magpie sends to a group: about 110k deliveries/s durable on the 2-core machine of RESULTS.md).
  fanout_magpie=600 fanout_mqtt=400 fanout_nats=2000
  idle_args=(--connections 10000 --hold-secs 3)
  sync_args=(--messages 10000)
  # As long as a latency run's measured part: slow fsyncs come in bursts seconds apart.
  disk_args=(--duration-secs 5)
  # Covers the latency run beside it: connecting, 5 s of sending, the drain.
  beside_secs=8
fi
# magpie-durable's group commits at 10,000 msg/s on the 2-core machine of RESULTS.md: about
# 800 to 1,300 fsyncs a second (batches of 8 to 12 messages).
beside_fsyncs_per_s=1000
secret=compare-secret-0123456789
started=$(date +%s)
say() { printf '[compare t+%ss] %s\n' "$(($(date +%s) - started))" "$*" >&2; }

# ---------------------------------------------------------------- peers and builds
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
missing=()
command -v mosquitto >/dev/null || missing+=(mosquitto)
command -v nats-server >/dev/null || missing+=(nats-server)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  for pkg in "${missing[@]}"; do
    if ! apt-cache policy "$pkg" | grep -q 'Candidate: [0-9]'; then
      "${sudo[@]}" apt-get update -q
      break
    fi
  done
  for pkg in "${missing[@]}"; do
    apt-cache policy "$pkg" | grep -q 'Candidate: [0-9]' \
      || { echo "compare.sh: no Debian package $pkg" >&2; exit 1; }
  done
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"
fi
say "building magpie-bench and magpied (release)"
cargo build --release -q -p magpie-benches --bin magpie-bench -p magpied --bin magpied
bench=$root/target/release/magpie-bench
magpied=$root/target/release/magpied

# Idle needs a descriptor per connection in the bench and in each server (started from here).
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d "${TMPDIR:-/tmp}/magpie-compare.XXXXXX")
records=$work/records
mkdir -p "$records" "$work/logs"
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- servers
wait_port() {
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# Starts configuration $1 fresh; sets server_pid, addr, target.
start() {
  local config=$1 rep=$2 log=$work/logs/$1-server-$2.log port
  case "$config" in
    magpie-durable | magpie-relaxed)
      local durability=immediate
      [ "$config" = magpie-relaxed ] && durability=relaxed
      # benches/bench.toml: rate limits out of the way, as the peers have none.
      local cmd=("$magpied" --config "$root/benches/bench.toml" --durability "$durability" --listen 127.0.0.1:0 --data-dir "$work/data-$config-$rep" --app "bench:$secret")
      start_magpied "$work/logs/$config-stdout-$rep" "$log" "${cmd[@]}" ||
        { echo "compare.sh: magpied did not start" >&2; exit 1; }
      target=magpie
      ;;
    mosquitto | mosquitto-beside-*)
      port=$("$bench" free-port)
      cat >"$work/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 0
max_connections -1
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
EOF
      local cmd=(mosquitto -c "$work/mosquitto.conf")
      "${cmd[@]}" >"$log" 2>&1 &
      server_pid=$!
      target=mqtt
      addr=127.0.0.1:$port
      wait_port "$port" || { cat "$log" >&2; echo "compare.sh: mosquitto did not start" >&2; exit 1; }
      ;;
    nats)
      port=$("$bench" free-port)
      local cmd=(nats-server -a 127.0.0.1 -p "$port")
      "${cmd[@]}" >"$log" 2>&1 &
      server_pid=$!
      target=nats
      addr=127.0.0.1:$port
      wait_port "$port" || { cat "$log" >&2; echo "compare.sh: nats-server did not start" >&2; exit 1; }
      ;;
  esac
  if [ "${rep%-idle}" = 1 ]; then
    printf '# %s\n%s &\n' "$config" "${cmd[*]}" | sed "s#$work#\$WORK#g; s#$root/##g" >>"$work/commands"
  fi
}

stop() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  # What a magpied wrote is flushed and removed now, not written back by the kernel during the
  # next configuration's runs: on a virtual machine, disk writes beside a run slow every process
  # (see the mosquitto-beside-disk-fsyncs control).
  rm -rf "$work"/data-*
  sync
}

failures=0
# Writes a command (already a line of text) to the report's list, with the work directory and
# this checkout's path left out.
record_command() {
  printf '%s\n' "$1" | sed "s#$work#\$WORK#g; s#$root/##g; s#--server-pid [0-9]*#--server-pid PID#" >>"$work/commands"
}
# Counts a failed run of command $1 and shows the end of its log $2.
failed() {
  failures=$((failures + 1))
  echo "compare.sh: FAILED: $1" >&2
  tail -n 5 "$2" >&2
}
# Runs scenario $2 of configuration $1, repetition $3, with extra arguments.
run() {
  local config=$1 scenario=$2 rep=$3
  shift 3
  local cmd=("$bench" "$scenario" --target "$target" --addr "$addr" --server-pid "$server_pid"
    --label "$config" --json "$records/$config-$scenario-$rep.json" "$@")
  [ "$target" = magpie ] && cmd+=(--secret "$secret")
  say "$config $scenario (repetition $rep/$reps)"
  [ "$rep" != 1 ] || record_command "${cmd[*]}"
  local log=$work/logs/$config-$scenario-$rep.log
  "${cmd[@]}" >"$log" 2>&1 || failed "${cmd[*]}" "$log"
}

# ---------------------------------------------------------------- the runs
# The build's writes are flushed now, not written back during the first repetition.
sync
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$reps"); do
  say "disk probe (repetition $rep/$reps)"
  disk_cmd=("$bench" disk --dir "$work" --json "$records/disk-$rep.json" "${disk_args[@]}")
  [ "$rep" != 1 ] || record_command "# disk probe
${disk_cmd[*]}"
  "${disk_cmd[@]}" >"$work/logs/disk-$rep.log" 2>&1 || failed "${disk_cmd[*]}" "$work/logs/disk-$rep.log"
  for config in magpie-durable magpie-relaxed mosquitto nats; do
    start "$config" "$rep"
    run "$config" pairs "$rep" "${pairs_args[@]}"
    run "$config" latency "$rep" "${latency_args[@]}"
    case "$config" in
      magpie-*) fan=$fanout_magpie ;;
      mosquitto) fan=$fanout_mqtt ;;
      nats) fan=$fanout_nats ;;
    esac
    run "$config" fanout "$rep" --receivers "$fanout_receivers" --messages "$fan"
    if [ "$target" = magpie ]; then
      run "$config" sync "$rep" "${sync_args[@]}"
    fi
    stop
  done
  # The controls: mosquitto's latency run again with paced fsyncs of a file of its own in another
  # process beside it, at about magpie-durable's fsync rate at 10,000 msg/s, on the disk and on
  # tmpfs (same wakeups and syscalls, no disk writes). mosquitto never touches the disk, so what
  # its tail loses beside the first and not the second is what disk writes cost this machine.
  for where in disk tmpfs; do
    case "$where" in
      disk) dir=$work ;;
      tmpfs) dir=/dev/shm ;;
    esac
    [ -d "$dir" ] || { say "no $dir: control beside $where fsyncs skipped"; continue; }
    config=mosquitto-beside-$where-fsyncs
    start "$config" "$rep"
    beside_cmd=("$bench" disk --dir "$dir" --rate "$beside_fsyncs_per_s" --duration-secs "$beside_secs")
    [ "$rep" != 1 ] || record_command "${beside_cmd[*]} &  # beside the latency run below"
    "${beside_cmd[@]}" >"$work/logs/$config-disk-$rep.log" 2>&1 &
    beside=$!
    run "$config" latency "$rep" "${latency_args[@]}" --control
    wait "$beside" || failed "${beside_cmd[*]}" "$work/logs/$config-disk-$rep.log"
    stop
  done
done
# idle last, each on a fresh process of its own (so its RSS baseline is a fresh server's): its
# 10,000 connections leave ~20,000 sockets in TIME_WAIT for a minute, and a latency run in that
# minute had a tail several times longer (p99 18 -> 84 ms for magpied, and mosquitto's too).
for rep in $(seq "$reps"); do
  for config in magpie-durable magpie-relaxed mosquitto nats; do
    start "$config" "$rep-idle"
    run "$config" idle "$rep" "${idle_args[@]}"
    stop
  done
done

# ---------------------------------------------------------------- the report
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
dirty=$(git diff --quiet HEAD 2>/dev/null || echo " (with uncommitted changes)")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
{
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- mode: $([ "$quick" = 1 ] && echo "QUICK (small counts: figures are a smoke test only)" || echo full), $reps repetition(s)"
  echo "- machine: $(nproc) cores ($cpu), Linux $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; servers and load generator on the same machine, loopback"
  echo "- load average (1, 5, 15 min) before the runs: $load_before; after: $load_after (anything beyond what the runs themselves add is other work sharing the machine)"
  echo "- magpie: git $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty, $(rustc --version)"
  echo "- mosquitto: $(mosquitto -h 2>/dev/null | head -n 1)"
  echo "- nats-server: $(nats-server --version 2>&1 | head -n 1)"
  echo "- clients: $(awk '/^name = "(rumqttc|async-nats)"$/ { n = $3; getline; printf "%s%s %s", sep, n, $3; sep = ", " }' Cargo.lock | tr -d '"'), magpie-client (this tree)"
  echo "- mosquitto.conf: listener on 127.0.0.1, persistence false, max_inflight_messages 0, max_queued_messages 0, set_tcp_nodelay true"
  echo "- magpied: \`benches/bench.toml\` (send and packet rate limits set where no scenario reaches them, as the peers have none; the limiters still run), relaxed with \`--durability relaxed\`"
  echo "- mosquitto-beside-disk-fsyncs, mosquitto-beside-tmpfs-fsyncs (controls): mosquitto's latency run again, with \`magpie-bench disk --rate $beside_fsyncs_per_s\` in another process beside it ($beside_fsyncs_per_s paced fsyncs a second of a file of its own, about magpie-durable's rate at 10,000 msg/s), on the disk and on tmpfs (where an fsync writes nothing). mosquitto never touches the disk: what it loses beside the first and not the second is what disk writes cost every process on this machine"
} >"$records/meta.txt"
cp "$work/commands" "$records/commands.txt"
"$bench" report --in "$records" --out "$results"
say "wrote $results"
if [ "$quick" = 1 ]; then cat "$results"; fi
if [ "$failures" -gt 0 ]; then
  echo "compare.sh: $failures run(s) failed; see the report" >&2
  exit 1
fi
