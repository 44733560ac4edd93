# HpoolTesting.cmake: registers a test once per rank count and thread count, with the right launcher.
#
#   hpool_add_mpi_test(NAME n COMMAND exe args... [RANKS plain 1 2 4] [THREADS 1 3])
#       runs `mpirun -n P exe args` (or exe alone for "plain") with HPOOL_THREADS=T.
#   hpool_add_script_test(NAME n COMMAND script args... [RANKS ...] [THREADS ...])
#       runs the script with HPOOL_LAUNCH set to the launcher prefix ("" for plain),
#       so the script can start the programs it checks under it.
#
# HPOOL_TEST_LAUNCHER=srun switches MPI tests to `srun -n P`.

set(HPOOL_TEST_LAUNCHER "mpirun" CACHE STRING "mpirun or srun")
set(HPOOL_TEST_ENVIRONMENT
    "OMPI_ALLOW_RUN_AS_ROOT=1"
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
    "OMPI_MCA_rmaps_base_oversubscribe=1"
    # Keeps Open MPI's plugins loaded at exit, so LeakSanitizer can name them.
    "OMPI_MCA_mca_base_component_disable_dlclose=1"
    # Open MPI's own leaks are not ours: see tests/lsan.supp.
    "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0"
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0"
    # The suite oversubscribes on purpose (4 ranks × 3 threads on 2 cores):
    # no placement warning on every run. tests/test_placement.sh checks it.
    "HPOOL_PLACEMENT=quiet")

# Open MPI's session directory, one per test: two mpiruns that start at
# once (ctest -j) race to create the shared /tmp/ompi.HOST.UID and one fails
# with "mkdir ... File exists" (seen in CI). A direct child of /tmp, so only
# the leaf is created, and short, for the Unix socket paths made inside it.
string(MD5 HPOOL__BUILD_HASH "${CMAKE_BINARY_DIR}")
string(SUBSTRING "${HPOOL__BUILD_HASH}" 0 8 HPOOL__BUILD_HASH)
function(hpool_mpi_session_environment out name)
  set(${out} "OMPI_MCA_orte_tmpdir_base=/tmp/hpool-ompi-${HPOOL__BUILD_HASH}-${name}" PARENT_SCOPE)
endfunction()

function(hpool__launcher out ranks)
  if(ranks STREQUAL "plain")
    set(${out} "" PARENT_SCOPE)
  elseif(HPOOL_TEST_LAUNCHER STREQUAL "srun")
    set(${out} "srun;-n;${ranks}" PARENT_SCOPE)
  else()
    set(${out} "${MPIEXEC_EXECUTABLE};${MPIEXEC_NUMPROC_FLAG};${ranks};--oversubscribe;${MPIEXEC_PREFLAGS}" PARENT_SCOPE)
  endif()
endfunction()

function(hpool__add kind)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;RANKS;THREADS;LABELS" ${ARGN})
  if(NOT T_RANKS)
    set(T_RANKS plain 1 2 4)
  endif()
  if(NOT T_THREADS)
    set(T_THREADS 1 3)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  foreach(ranks IN LISTS T_RANKS)
    foreach(threads IN LISTS T_THREADS)
      set(name "${T_NAME}.r${ranks}.t${threads}")
      hpool__launcher(launch ${ranks})
      set(leaks "")
      if(NOT ranks STREQUAL "plain")
        # Open MPI's plugins leak at exit from code LeakSanitizer cannot name
        # (no symbols), so leaks are checked on the plain runs, which run the
        # same hpool code; memory errors are checked everywhere.
        set(leaks "ASAN_OPTIONS=detect_leaks=0")
      endif()
      hpool_mpi_session_environment(session ${name})
      if(kind STREQUAL "mpi")
        add_test(NAME ${name} COMMAND ${launch} ${T_COMMAND})
        set(env ${HPOOL_TEST_ENVIRONMENT} "HPOOL_THREADS=${threads}" ${leaks} ${session})
      else()
        add_test(NAME ${name} COMMAND ${T_COMMAND})
        string(REPLACE ";" " " launch_words "${launch}")
        set(env ${HPOOL_TEST_ENVIRONMENT} "HPOOL_THREADS=${threads}" "HPOOL_LAUNCH=${launch_words}" ${leaks} ${session})
      endif()
      set_tests_properties(${name} PROPERTIES ENVIRONMENT "${env}" TIMEOUT ${T_TIMEOUT}
                           LABELS "${T_LABELS}")
    endforeach()
  endforeach()
endfunction()

function(hpool_add_mpi_test)
  hpool__add(mpi ${ARGN})
endfunction()

function(hpool_add_script_test)
  hpool__add(script ${ARGN})
endfunction()
