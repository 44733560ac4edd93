#!/usr/bin/env bash
# quickstart.sh: installs what is missing, builds hpool, and runs metatags (the main job) on the bundled pages in data/html.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"

# Open MPI refuses to run as root unless told; the quick start runs as root.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

echo "== metatags data/html: every <meta .*?> tag of the bundled pages, in page order (one process)"
build/apps/metatags/metatags data/html
echo "== mpirun -n 2 metatags --count data/html: distinct tags, most frequent first (2 ranks × 1 thread)"
mpirun -n 2 --oversubscribe build/apps/metatags/metatags --threads 1 --count data/html
echo "== square --sum 1000000000 (one process)"
build/apps/square/square --sum 1000000000
