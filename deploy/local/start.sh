#!/usr/bin/env bash
# Starts one local test server in the background, bound to 127.0.0.1, and waits until it is healthy.
#
#   deploy/local/start.sh ddb|moto [--port N] [--owner-pid P] [--cpus LIST]
#
# stdout carries only machine-readable KEY=VALUE lines:
#   ddb:  FERRY_DDB_ENDPOINT=http://127.0.0.1:PORT
#         FERRY_DDB_ADMIN=http://127.0.0.1:ADMINPORT
#         FERRY_DDB_PID=PID
#   moto: FERRY_MOTO_ENDPOINT=http://127.0.0.1:PORT
#         FERRY_MOTO_PID=PID
# Without --port a free port is picked. With --owner-pid the server exits once process P is gone.
# With --cpus the server runs on those cores only (a taskset list: benches give the destination
# cores of its own).
# Logs: $RUN/<name>-<port>.log, pidfile: $RUN/<name>-<port>.pid,
# RUN=${FERRY_RIG_RUN:-$CACHE/run}, CACHE=${FERRY_RIG_CACHE:-$HOME/.cache/ferry-rig}.
# FERRY_RIG_TIMEOUT (seconds, default 60) bounds the wait for readiness. Stop with stop.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${FERRY_RIG_CACHE:-$HOME/.cache/ferry-rig}"
RUN="${FERRY_RIG_RUN:-$CACHE/run}"
TIMEOUT="${FERRY_RIG_TIMEOUT:-60}"
HOST=127.0.0.1

die() { echo "ferry-rig: ERROR: $*" >&2; exit 1; }
usage() { die "usage: $0 ddb|moto [--port N] [--owner-pid P] [--cpus LIST]"; }

[[ $# -ge 1 ]] || usage
name="$1"; shift
case "$name" in ddb|moto) ;; *) usage ;; esac
port="" owner="" cpus=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) [[ $# -ge 2 ]] || usage; port="$2"; shift 2 ;;
    --owner-pid) [[ $# -ge 2 ]] || usage; owner="$2"; shift 2 ;;
    --cpus) [[ $# -ge 2 ]] || usage; cpus="$2"; shift 2 ;;
    *) usage ;;
  esac
done
[[ -z "$port" || "$port" =~ ^[0-9]+$ ]] || die "--port must be a number"
[[ -z "$cpus" || "$cpus" =~ ^[0-9,-]+$ ]] || die "--cpus must be a core list like 0 or 0-1,3"
# pinned: runs its arguments on $cpus when given.
pinned=()
if [[ -n "$cpus" ]]; then
  command -v taskset >/dev/null 2>&1 || die "--cpus needs taskset (util-linux)"
  pinned=(taskset --cpu-list "$cpus")
fi
if [[ -n "$owner" ]]; then
  [[ "$owner" =~ ^[0-9]+$ ]] || die "--owner-pid must be a number"
  [[ -d "/proc/$owner" ]] || die "--owner-pid $owner is not running"
fi

# Install (silent and fast when already installed).
"$HERE/install.sh" "$name" >&2 || die "install.sh $name failed"
mkdir -p "$RUN"

PY="$CACHE/moto-venv/bin/python"
[[ -x "$PY" ]] || PY=python3

free_port() { # prints a port that is free on 127.0.0.1 right now
  "$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port_busy() { # true if something accepts or holds port $1 on 127.0.0.1 / any address
  "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
finally:
    s.close()
sys.exit(1)
EOF
}

# http_code METHOD URL [curl args...]: prints the HTTP status (000 if no response).
if command -v curl >/dev/null 2>&1; then
  http_code() {
    local m="$1" u="$2"; shift 2
    curl -s -o /dev/null -m 2 -w '%{http_code}' -X "$m" "$@" "$u" 2>/dev/null || true
  }
else
  http_code() { # minimal fallback: no extra headers/body besides ListTables' needs
    "$PY" - "$1" "$2" <<'EOF' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
m, u = sys.argv[1], sys.argv[2]
data = b"{}" if m == "POST" else None
req = urllib.request.Request(u, data=data, method=m, headers={
    "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"})
try:
    print(urllib.request.urlopen(req, timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
  }
fi

now_ms() { date +%s%3N; }

alive() { # alive PID: the process exists and is not a zombie
  local st
  st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  st="${st##*) }"
  [[ -n "$st" && "${st%% *}" != Z && "${st%% *}" != X ]]
}

launch() { # launch NAME PORT [ADMINPORT] -> sets $pid
  local log="$RUN/$name-$1.log"
  : >"$log"
  if [[ "$name" == ddb ]]; then
    local args=(--port "$1" --admin-port "$2")
    [[ -n "$owner" ]] && args+=(--owner-pid "$owner")
    # setsid: own session (no signals from the caller's terminal/process group);
    # all three std streams redirected so a caller reading our stdout to EOF does not hang.
    nohup setsid "${pinned[@]}" java -Xmx2g -Djava.net.preferIPv4Stack=true \
      -Djava.library.path="$CACHE/ddb-local/DynamoDBLocal_lib" \
      -cp "$CACHE/launcher:$CACHE/ddb-local/DynamoDBLocal.jar:$CACHE/ddb-local/DynamoDBLocal_lib/*" \
      FerryDynamoLocal "${args[@]}" >"$log" 2>&1 </dev/null &
  else
    nohup setsid "${pinned[@]}" "$CACHE/moto-venv/bin/moto_server" -H "$HOST" -p "$1" >"$log" 2>&1 </dev/null &
  fi
  pid=$!
}

healthy() { # healthy PORT [ADMINPORT]
  if [[ "$name" == ddb ]]; then
    [[ "$(http_code GET "http://$HOST:$2/health")" == 200 ]] || return 1
    # A real DynamoDB call: unsigned ListTables gets a 400 MissingAuthenticationToken, i.e. any response.
    [[ "$(http_code POST "http://$HOST:$1/" -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
          -H 'Content-Type: application/x-amz-json-1.0' --data '{}')" != 000 ]]
  else
    [[ "$(http_code GET "http://$HOST:$1/moto-api/")" == 200 ]]
  fi
}

start_watcher() { # moto only: kill moto when the owner goes away
  local wfile="$RUN/$name-$1.watcher"
  # The marker word ferry-rig-watcher in $0 lets stop.sh recognise the loop.
  nohup setsid sh -c '
    # start time (field 22 of /proc/PID/stat) of a live, non-zombie process; empty otherwise
    stime() {
      s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
      s=${s##*") "}
      set -- $s
      [ "$1" = Z ] || [ "$1" = X ] || [ $# -lt 20 ] || echo "${20}"
    }
    owner=$1 srv=$2 wfile=$3
    o0=$(stime "$owner") s0=$(stime "$srv")
    while [ -n "$o0" ] && [ "$(stime "$owner")" = "$o0" ] && [ "$(stime "$srv")" = "$s0" ]; do
      sleep 0.5
    done
    if [ -n "$s0" ] && [ "$(stime "$srv")" = "$s0" ]; then
      kill -TERM "$srv" 2>/dev/null
      i=0; while [ $i -lt 10 ] && [ "$(stime "$srv")" = "$s0" ]; do sleep 0.5; i=$((i+1)); done
      [ "$(stime "$srv")" = "$s0" ] && kill -KILL "$srv" 2>/dev/null
    fi
    rm -f "$wfile"' ferry-rig-watcher "$owner" "$pid" "$wfile" >/dev/null 2>&1 </dev/null &
  echo $! >"$wfile"
}

# Forget pidfiles of servers that are gone (e.g. after an owner-pid exit).
shopt -s nullglob
for f in "$RUN"/*.pid "$RUN"/*.watcher; do
  p="$(head -n1 "$f" 2>/dev/null)" || continue
  alive "$p" || rm -f "$f"
done
shopt -u nullglob

user_port="$port"
attempt=0
while :; do
  attempt=$((attempt + 1))
  if [[ -z "$user_port" ]]; then
    port="$(free_port)"
  elif port_busy "$port"; then
    die "port $port on $HOST is already in use"
  fi
  admin=""
  if [[ "$name" == ddb ]]; then
    admin="$(free_port)"
    while [[ "$admin" == "$port" ]]; do admin="$(free_port)"; done
  fi
  pidfile="$RUN/$name-$port.pid"
  log="$RUN/$name-$port.log"

  t0="$(now_ms)"
  launch "$port" $admin
  echo "$pid" >"$pidfile"
  [[ "$name" == moto && -n "$owner" ]] && start_watcher "$port"

  deadline=$(( t0 + TIMEOUT * 1000 ))
  ok=0 died=0
  while :; do
    if ! alive "$pid"; then died=1; break; fi
    if healthy "$port" $admin; then ok=1; break; fi
    (( $(now_ms) < deadline )) || break
    sleep 0.1
  done
  # Make sure the thing that answered is ours (not another server that grabbed the port).
  if [[ $ok == 1 ]] && ! alive "$pid"; then ok=0; died=1; fi
  if [[ $ok == 1 ]]; then break; fi

  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  # An auto-picked port may have been taken between picking and binding: retry a couple of times.
  if [[ $died == 1 && -z "$user_port" && $attempt -lt 3 ]] && grep -qiE 'address already in use|BindException' "$log"; then
    continue
  fi
  {
    if [[ $died == 1 ]]; then
      echo "ferry-rig: ERROR: $name exited before becoming healthy. Last lines of $log:"
    else
      echo "ferry-rig: ERROR: $name not healthy on $HOST:$port after ${TIMEOUT}s. Last lines of $log:"
    fi
    tail -n 30 "$log" | sed 's/^/  | /'
  } >&2
  exit 1
done

t1="$(now_ms)"
echo "ferry-rig: $name ready on $HOST:$port in $(( t1 - t0 )) ms (pid $pid, log $log)" >&2
if [[ "$name" == ddb ]]; then
  echo "FERRY_DDB_ENDPOINT=http://$HOST:$port"
  echo "FERRY_DDB_ADMIN=http://$HOST:$admin"
  echo "FERRY_DDB_PID=$pid"
else
  echo "FERRY_MOTO_ENDPOINT=http://$HOST:$port"
  echo "FERRY_MOTO_PID=$pid"
fi
