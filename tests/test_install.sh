#!/usr/bin/env bash
# test_install.sh: installs hpool into a scratch prefix, checks what libhpool.so exports and its soname, and builds the README's example against it (CMake and pkg-config, shared and static, and a C++ program).
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

prefix=$scratch/prefix
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
# lib, or lib/x86_64-linux-gnu: whatever GNUInstallDirs chose.
pc=$(find "$prefix" -name hpool.pc -path '*/pkgconfig/*')
[ -n "$pc" ] || fail "no hpool.pc installed"
libdir=$(cd "$(dirname "$pc")/.." && pwd)
header=$prefix/include/hpool.h
export PKG_CONFIG_PATH=$(dirname "$pc")
for file in libhpool.so libhpool.a cmake/hpool/hpoolConfig.cmake cmake/hpool/hpoolConfigVersion.cmake; do
  [ -e "$libdir/$file" ] || fail "$libdir/$file not installed"
done

# 1. The soname follows the rule in framework/CMakeLists.txt: MAJOR.MINOR
#    while the major version is 0, MAJOR from 1.0 on.
major=$(sed -n 's/^#define HPOOL_VERSION_MAJOR \([0-9]*\)$/\1/p' "$header")
minor=$(sed -n 's/^#define HPOOL_VERSION_MINOR \([0-9]*\)$/\1/p' "$header")
patch=$(sed -n 's/^#define HPOOL_VERSION_PATCH \([0-9]*\)$/\1/p' "$header")
if [ "$major" = 0 ]; then soname=libhpool.so.$major.$minor; else soname=libhpool.so.$major; fi
actual=$(readelf -d "$libdir/libhpool.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$actual" = "$soname" ] || fail "soname is '$actual', not $soname"
[ "$(readlink "$libdir/libhpool.so")" = "$soname" ] || fail "libhpool.so does not point to $soname"
[ "$(readlink "$libdir/$soname")" = "libhpool.so.$major.$minor.$patch" ] || fail "$soname does not point to libhpool.so.$major.$minor.$patch"
echo "ok: soname $soname"

# 2. The exports are exactly the functions hpool.h marks HPOOL_API: none of
#    the hpool__ internals, and none of the API missing. The declarations are
#    read without comments or preprocessor lines, so one split over lines
#    still counts.
declared=$(perl -0777 -ne 's{/\*.*?\*/}{}gs; s{//[^\n]*}{}g; s{^\s*#[^\n]*(\\\n[^\n]*)*}{}mg;
                          print "$1\n" while /\bHPOOL_API\b[^;{}()]*?\b(\w+)\s*\(/g' "$header" | sort)
exported=$(nm -D --defined-only "$libdir/libhpool.so" | awk '{print $NF}' | sort)
[ "$(wc -l <<<"$declared")" -ge 40 ] || fail "found only $(wc -l <<<"$declared") HPOOL_API declarations in hpool.h"
extra=$(comm -13 <(echo "$declared") <(echo "$exported"))
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
[ -z "$extra" ] || fail "libhpool.so exports what hpool.h does not declare:" $extra
[ -z "$missing" ] || fail "libhpool.so does not export what hpool.h declares:" $missing
bad_names=$(grep -v '^hpool_[a-z0-9]' <<<"$declared" || true)
[ -z "$bad_names" ] || fail "public names without the hpool_ prefix:" $bad_names
echo "ok: libhpool.so exports the $(wc -l <<<"$declared") functions of hpool.h and nothing else"

# The consumers below, built against only the installed files.
expected=$(printf '%s\n' 0 1 8 27 64 125)
run_cube() { # program, how it was built
  local out
  out=$(${HPOOL_LAUNCH:-} "$1" 6) || fail "cube ($2) exited with $?"
  [ "$out" = "$expected" ] || fail "cube ($2) printed: $out"
}
links_installed_shared() { # program: loads the installed libhpool.so
  local libraries
  libraries=$(ldd "$1")
  grep "$soname => $libdir/$soname" >/dev/null <<<"$libraries" ||
    fail "$1 does not load $libdir/$soname: $(grep hpool <<<"$libraries")"
}
links_static() { # program: has hpool inside, needs no libhpool.so
  local dynamic symbols
  dynamic=$(readelf -d "$1")
  symbols=$(nm "$1")
  ! grep 'NEEDED.*libhpool' >/dev/null <<<"$dynamic" || fail "$1 needs libhpool.so"
  grep ' T hpool_map$' >/dev/null <<<"$symbols" || fail "$1 has no hpool_map inside"
}

# 3. CMake: find_package(hpool), hpool::hpool (shared, the default).
cmake -S "$source_dir/examples/custom" -B "$scratch/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/cmake-build" >/dev/null
links_installed_shared "$scratch/cmake-build/cube"
run_cube "$scratch/cmake-build/cube" "find_package, hpool::hpool"
echo "ok: find_package(hpool) build with hpool::hpool runs"

# 4. CMake: hpool::hpool_static.
mkdir "$scratch/cmake-static"
cat >"$scratch/cmake-static/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.18)
project(cube_static LANGUAGES C)
find_package(hpool REQUIRED)
add_executable(cube "$source_dir/examples/custom/cube.c")
target_link_libraries(cube PRIVATE hpool::hpool_static)
EOF
cmake -S "$scratch/cmake-static" -B "$scratch/cmake-static/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/cmake-static/build" >/dev/null
links_static "$scratch/cmake-static/build/cube"
run_cube "$scratch/cmake-static/build/cube" "find_package, hpool::hpool_static"
echo "ok: find_package(hpool) build with hpool::hpool_static runs"

# 5. pkg-config, the way a Makefile would: the shared library. A consumer's
#    code needs no -fopenmp to compile against hpool.h.
cflags=$(pkg-config --cflags hpool)
for flag in $cflags; do
  case $flag in -I*) ;; *openmp*) fail "pkg-config --cflags hpool asks for OpenMP: $cflags" ;; esac
done
cc -o "$scratch/cube-pc" "$source_dir/examples/custom/cube.c" $cflags $(pkg-config --libs hpool) -Wl,-rpath,"$libdir"
links_installed_shared "$scratch/cube-pc"
run_cube "$scratch/cube-pc" "pkg-config"
echo "ok: pkg-config build runs"

# 6. pkg-config --static: everything libhpool.a needs (libgomp, MPI's own
#    libraries). -lhpool would pick libhpool.so, which lies beside it, so the
#    archive is named (-l:libhpool.a, GNU ld).
static_libs=$(pkg-config --static --libs hpool)
static_libs=${static_libs/-lhpool/-l:libhpool.a}
cc -o "$scratch/cube-pc-static" "$source_dir/examples/custom/cube.c" $cflags $static_libs
links_static "$scratch/cube-pc-static"
run_cube "$scratch/cube-pc-static" "pkg-config --static"
echo "ok: pkg-config --static build runs"

# 7. C++: hpool.h from a C++ compiler, warnings as errors. Without MPI's
#    old C++ bindings, which mpi.h would otherwise pull in (they do not build
#    warning-free, and need libmpi_cxx): hpool uses only MPI's C API.
${CXX:-c++} -std=c++11 -Wall -Wextra -Werror -DOMPI_SKIP_MPICXX -DMPICH_SKIP_MPICXX -o "$scratch/cxx" "$source_dir/tests/test_install_cxx.cpp" \
  $cflags $(pkg-config --libs hpool) -Wl,-rpath,"$libdir"
out=$(${HPOOL_LAUNCH:-} "$scratch/cxx") || fail "the C++ program exited with $?"
[ "$out" = "ok $major.$minor.$patch" ] || fail "the C++ program printed: $out"
echo "ok: C++ build runs"
