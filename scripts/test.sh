#!/usr/bin/env bash
# test.sh: installs what is missing, builds hpool three times (plain, with ASan+UBSan, and against MPICH) and runs the whole suite on each.
set -euo pipefail
cd "$(dirname "$0")/.."

# The cluster tests also need a Slurm with munge, and ip for network namespaces;
# the third pass needs MPICH. Debian ranks Open MPI above MPICH in the
# alternatives, so mpicc and mpirun stay Open MPI's.
bash scripts/install-deps.sh slurm-wlm munge iproute2 mpich libmpich-dev
jobs=$(nproc)
# CI sets HPOOL_WERROR=ON, so a new warning fails it; a user's newer compiler only warns.
werror=${HPOOL_WERROR:-OFF}

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHPOOL_WERROR="$werror" >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DHPOOL_SANITIZE=ON -DHPOOL_BUILD_BENCH=OFF -DHPOOL_WERROR="$werror" >/dev/null
cmake --build build-sanitize -j "$jobs"
ctest --test-dir build-sanitize --output-on-failure -j "$jobs"

# MPICH, named outright: FindMPI would otherwise take the default mpicc and
# mpiexec, Open MPI's. The tests that only Open MPI can run say so and skip
# (tests/CMakeLists.txt).
cmake -S . -B build-mpich -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHPOOL_BUILD_BENCH=OFF -DHPOOL_WERROR="$werror" \
  -DMPI_C_COMPILER=/usr/bin/mpicc.mpich -DMPIEXEC_EXECUTABLE=/usr/bin/mpiexec.mpich >/dev/null
cmake --build build-mpich -j "$jobs"
libraries=$(ldd build-mpich/tests/test_calls)
if ! grep -q libmpich <<<"$libraries" || grep -q 'libmpi\.so' <<<"$libraries"; then
  echo "test.sh: build-mpich/tests/test_calls does not link MPICH alone: $libraries" >&2
  exit 1
fi
ctest --test-dir build-mpich --output-on-failure -j "$jobs"
