#!/usr/bin/env bash
# quickstart.sh: installs what is missing, builds hpool, and runs the main job on the bundled input.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"

# Open MPI refuses to run as root unless told; the quick start runs as root.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

echo "== square --input data/numbers.txt (one process, threads from the CPUs it may use)"
build/apps/square/square --input data/numbers.txt
echo "== mpirun -n 2 square --sum 1000000000 (2 ranks × 1 thread)"
mpirun -n 2 --oversubscribe build/apps/square/square --threads 1 --sum 1000000000
