#!/usr/bin/env bash
# Wall-clock ratios to raw rustix epoll, interleaved: for each row, every
# contender runs in turn (raw rustix epoll, EpollSelector, optionally the
# EpollSelector of a second build, mio, polling), ROUNDS times, each run
# pinned to one CPU; prints the medians as ratios to raw epoll's median.
# Interleaving spreads a shared machine's drift over all contenders alike.
#
#   cargo bench -p selectors2-bench --bench profile --no-run
#   benches/interleaved.sh target/release/deps/profile-HASH [BEFORE_PROFILE_BINARY]
#
# Environment: ROUNDS (default 9), ITERS (default 400000), CPU (default 1),
# ROWS (default every row: "ping_pong 1,ping_pong 100,modify 1,reg_unreg 1,
# scaling 100,level_scan 100").
set -euo pipefail
now="${1:?usage: $0 PROFILE_BINARY [BEFORE_PROFILE_BINARY]}"
before="${2:-}"
ROUNDS="${ROUNDS:-9}"; ITERS="${ITERS:-400000}"; CPU="${CPU:-1}"

run() { # scenario contender binary -> ns per iteration
  SELECTORS2_PROFILE="$1 $2 $ITERS" taskset -c "$CPU" "$3" | sed 's/.*: \([0-9.]*\) ns.*/\1/'
}

echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r), $(date -u '+%F %H:%M') UTC"
IFS=, read -r -a rows <<<"${ROWS:-ping_pong 1,ping_pong 100,modify 1,reg_unreg 1,scaling 100,level_scan 100}"
for s in "${rows[@]}"; do
  raw=""; cur=""; bef=""; mio=""; pol=""
  for _ in $(seq "$ROUNDS"); do
    raw="$raw $(run "$s" rustix_epoll "$now")"
    cur="$cur $(run "$s" s2_epoll "$now")"
    if [ -n "$before" ]; then bef="$bef $(run "$s" s2_epoll "$before")"; fi
    # mio is edge-triggered: it sits out the rows that keep sockets ready.
    case "$s" in scaling*|level_scan*) ;; *) mio="$mio $(run "$s" mio "$now")" ;; esac
    pol="$pol $(run "$s" polling "$now")"
  done
  python3 - "$s" "$raw" "$cur" "$bef" "$mio" "$pol" <<'PY'
import statistics, sys
row, *cols = sys.argv[1:]
med = [statistics.median(map(float, c.split())) if c.split() else None for c in cols]
raw, cur, bef, mio, pol = med
out = f"{row:15} raw {raw:8.1f} ns | EpollSelector {cur / raw:.3f}x"
if bef: out += f" (before {bef / raw:.3f}x, now/before {cur / bef:.3f})"
out += f" | mio {mio / raw:.3f}x" if mio else " | mio -"
out += f" | polling {pol / raw:.3f}x"
print(out)
PY
done
