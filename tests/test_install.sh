#!/usr/bin/env bash
# test_install.sh: installs hpool into a scratch prefix and builds the README's example against it, with CMake and with pkg-config.
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null

# 1. CMake: find_package(hpool)
cmake -S "$source_dir/examples/custom" -B "$scratch/cmake-build" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/cmake-build" >/dev/null
expected=$(printf '%s\n' 0 1 8 27 64 125)
actual=$(${HPOOL_LAUNCH:-} "$scratch/cmake-build/cube" 6)
[ "$actual" = "$expected" ] || { echo "cube via find_package printed: $actual"; exit 1; }
echo "ok: find_package(hpool) build runs"

# 2. pkg-config, the way a Makefile would
PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig:$scratch/prefix/lib/x86_64-linux-gnu/pkgconfig" \
  cc -o "$scratch/cube-pc" "$source_dir/examples/custom/cube.c" \
  $(PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig:$scratch/prefix/lib/x86_64-linux-gnu/pkgconfig" pkg-config --cflags --libs hpool)
actual=$(${HPOOL_LAUNCH:-} "$scratch/cube-pc" 6)
[ "$actual" = "$expected" ] || { echo "cube via pkg-config printed: $actual"; exit 1; }
echo "ok: pkg-config build runs"
