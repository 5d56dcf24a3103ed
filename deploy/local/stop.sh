#!/usr/bin/env bash
# Stops local test servers started by start.sh: SIGTERM, then SIGKILL after 5 s. Idempotent.
#
#   deploy/local/stop.sh PID [PID ...]   stop these servers (as printed in FERRY_*_PID)
#   deploy/local/stop.sh all             stop every server with a pidfile in $RUN
#
# Only processes that are rig servers (FerryDynamoLocal or moto_server) are signalled; a pid that
# is gone or belongs to something else is skipped. Matching pidfiles and moto watchers are removed.
# RUN=${FERRY_RIG_RUN:-$CACHE/run}, CACHE=${FERRY_RIG_CACHE:-$HOME/.cache/ferry-rig}.
set -uo pipefail

CACHE="${FERRY_RIG_CACHE:-$HOME/.cache/ferry-rig}"
RUN="${FERRY_RIG_RUN:-$CACHE/run}"

[[ $# -ge 1 ]] || { echo "usage: $0 PID [PID ...] | all" >&2; exit 2; }

alive() { # alive PID: the process exists and is not a zombie
  local st
  st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  st="${st##*) }"
  [[ -n "$st" && "${st%% *}" != Z && "${st%% *}" != X ]]
}

is_rig() { # is_rig PID: the process is alive and is one of ours
  alive "$1" || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *FerryDynamoLocal* || "$cmd" == *moto_server* || "$cmd" == *ferry-rig-watcher* ]]
}

pids=()
if [[ "$1" == all ]]; then
  shopt -s nullglob
  for f in "$RUN"/*.pid "$RUN"/*.watcher; do
    p="$(head -n1 "$f" 2>/dev/null)"
    [[ "$p" =~ ^[0-9]+$ ]] && pids+=("$p")
  done
else
  for p in "$@"; do
    [[ -z "$p" ]] && continue
    [[ "$p" =~ ^[0-9]+$ ]] || { echo "ferry-rig: not a pid: $p" >&2; exit 2; }
    pids+=("$p")
  done
fi

targets=()
for p in "${pids[@]}"; do
  if is_rig "$p"; then
    targets+=("$p")
  elif alive "$p" && [[ "$1" != all ]]; then
    echo "ferry-rig: pid $p is not a rig server; not touching it" >&2
  fi
done

for p in "${targets[@]}"; do kill -TERM "$p" 2>/dev/null; done
for _ in $(seq 50); do
  alive=0
  for p in "${targets[@]}"; do is_rig "$p" && alive=1; done
  [[ $alive == 0 ]] && break
  sleep 0.1
done
for p in "${targets[@]}"; do is_rig "$p" && kill -KILL "$p" 2>/dev/null; done

# Remove the pidfiles (and moto watcher files) of the stopped servers, and any stale ones.
shopt -s nullglob
for f in "$RUN"/*.pid "$RUN"/*.watcher; do
  p="$(head -n1 "$f" 2>/dev/null)"
  remove=0
  for q in "${pids[@]}"; do [[ "$p" == "$q" ]] && remove=1; done
  [[ "$p" =~ ^[0-9]+$ ]] && ! is_rig "$p" && remove=1
  if [[ $remove == 1 ]]; then
    rm -f "$f"
    [[ "$f" == *.pid ]] && w="${f%.pid}.watcher" && [[ -f "$w" ]] && {
      wp="$(head -n1 "$w" 2>/dev/null)"
      [[ "$wp" =~ ^[0-9]+$ ]] && is_rig "$wp" && kill -TERM "$wp" 2>/dev/null
      rm -f "$w"
    }
  fi
done
exit 0
