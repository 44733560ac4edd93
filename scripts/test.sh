#!/usr/bin/env bash
# test.sh: installs what is missing, builds hpool twice (plain, and with ASan+UBSan) and runs the whole suite on both.
set -euo pipefail
cd "$(dirname "$0")/.."

# The cluster tests also need a Slurm with munge, and ip for network namespaces.
bash scripts/install-deps.sh slurm-wlm munge iproute2
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DHPOOL_SANITIZE=ON -DHPOOL_BUILD_BENCH=OFF >/dev/null
cmake --build build-sanitize -j "$jobs"
ctest --test-dir build-sanitize --output-on-failure -j "$jobs"
