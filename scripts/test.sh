#!/usr/bin/env bash
# test.sh: installs what is missing, builds hpool twice (plain, and with ASan+UBSan) and runs the whole suite on both.
set -euo pipefail
cd "$(dirname "$0")/.."

# The cluster tests also need a Slurm with munge, and ip for network namespaces.
bash scripts/install-deps.sh slurm-wlm munge iproute2
jobs=$(nproc)
# CI sets HPOOL_WERROR=ON, so a new warning fails it; a user's newer compiler only warns.
werror=${HPOOL_WERROR:-OFF}

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHPOOL_WERROR="$werror" >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DHPOOL_SANITIZE=ON -DHPOOL_BUILD_BENCH=OFF -DHPOOL_WERROR="$werror" >/dev/null
cmake --build build-sanitize -j "$jobs"
ctest --test-dir build-sanitize --output-on-failure -j "$jobs"
