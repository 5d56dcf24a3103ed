#!/usr/bin/env bash
# ferry's main job on the local rig: DynamoDB Local with two accounts, a source table with data,
# `ferry sync` while writes go on, then caught up and a full source/destination comparison.
# Exits 0 only when the tables match. The server it starts stops when the demo ends.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/install.sh ddb
cargo build --release --bin ferry --example live_demo
cargo run --release --quiet --example live_demo
