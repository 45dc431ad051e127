# Shell functions shared by benches/compare.sh and benches/profile.sh (sourced, not run).

# start_magpied OUT LOG CMD...: starts magpied with CMD, its stdout to OUT and stderr to LOG,
# and waits (up to 10 s) for the address it announces. Sets server_pid and addr; on failure
# prints LOG and returns 1.
start_magpied() {
  local out=$1 log=$2
  shift 2
  : >"$out" # exists before the background job opens it, so the first read cannot race
  "$@" >"$out" 2>"$log" &
  server_pid=$!
  addr=
  for _ in $(seq 200); do
    addr=$(sed -n 's/^magpied listening on //p' "$out")
    [ -n "$addr" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$log" >&2
  return 1
}
