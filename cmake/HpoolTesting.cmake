# HpoolTesting.cmake: registers a test once per rank count and thread count, with the right launcher.
#
#   hpool_add_mpi_test(NAME n COMMAND exe args... [RANKS plain 1 2 4] [THREADS 1 3])
#       runs `mpiexec -n P exe args` (or exe alone for "plain") with HPOOL_THREADS=T.
#   hpool_add_script_test(NAME n COMMAND script args... [RANKS ...] [THREADS ...])
#       runs the script with HPOOL_LAUNCH set to the launcher prefix ("" for plain),
#       so the script can start the programs it checks under it.
#   hpool_skip_test(NAME n WHY...)
#       a test that says why it cannot run with this MPI and exits 77 (skipped).
#
# Both label their tests "mpi". HPOOL_TEST_LAUNCHER=srun switches MPI tests to
# `srun -n P`. Every test also gets HPOOL_TEST_MPI (openmpi, mpich or other),
# HPOOL_TEST_MPIEXEC and HPOOL_TEST_MPIEXEC_FLAGS, for scripts that start
# mpiexec with arguments of their own.

set(HPOOL_TEST_LAUNCHER "mpirun" CACHE STRING "mpirun or srun")

# Which MPI the launcher belongs to, from what it says of itself: Open MPI's
# mpirun and MPICH's hydra mpiexec need different flags. The header says which
# MPI the library was compiled against; the two must agree, or every "rank"
# would be a singleton of its own (FindMPI takes the first mpiexec on the PATH,
# the machine's default MPI, whatever MPI_C_COMPILER is).
function(hpool__mpi_vendor out text)
  if(text MATCHES "Open MPI|OpenRTE|OPEN_MPI")
    set(${out} openmpi PARENT_SCOPE)
  elseif(text MATCHES "HYDRA|MPICH")
    set(${out} mpich PARENT_SCOPE)
  else()
    set(${out} other PARENT_SCOPE)
  endif()
endfunction()
execute_process(COMMAND "${MPIEXEC_EXECUTABLE}" --version OUTPUT_VARIABLE hpool__version ERROR_VARIABLE hpool__version
                TIMEOUT 20 RESULT_VARIABLE hpool__result)
hpool__mpi_vendor(HPOOL_TEST_MPI "${hpool__version}")
set(hpool__header "")
foreach(directory IN LISTS MPI_C_HEADER_DIR MPI_C_INCLUDE_DIRS)
  if(EXISTS "${directory}/mpi.h")
    file(STRINGS "${directory}/mpi.h" hpool__header REGEX "^#define (OPEN_MPI|MPICH_VERSION) ")
    break()
  endif()
endforeach()
hpool__mpi_vendor(hpool__library "${hpool__header}")
if(NOT hpool__library STREQUAL "other" AND NOT HPOOL_TEST_MPI STREQUAL hpool__library)
  message(FATAL_ERROR "hpool is compiled against ${hpool__library} (${MPI_C_HEADER_DIR}/mpi.h) but MPIEXEC_EXECUTABLE "
                      "(${MPIEXEC_EXECUTABLE}) is ${HPOOL_TEST_MPI}'s: pass both, e.g. for Debian's MPICH "
                      "-DMPI_C_COMPILER=/usr/bin/mpicc.mpich -DMPIEXEC_EXECUTABLE=/usr/bin/mpiexec.mpich")
endif()
message(STATUS "hpool tests: ${HPOOL_TEST_MPI} launcher ${MPIEXEC_EXECUTABLE}")

set(HPOOL_TEST_ENVIRONMENT
    # Open MPI's own leaks are not ours: see tests/lsan.supp.
    "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0"
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0"
    # The suite oversubscribes on purpose (4 ranks × 3 threads on 2 cores):
    # no placement warning on every run. tests/test_placement.sh checks it.
    "HPOOL_PLACEMENT=quiet")
if(HPOOL_TEST_MPI STREQUAL "openmpi")
  # mpirun refuses more ranks than cores, and root, unless told.
  set(HPOOL_TEST_MPIEXEC_FLAGS --oversubscribe)
  list(APPEND HPOOL_TEST_ENVIRONMENT
       "OMPI_ALLOW_RUN_AS_ROOT=1"
       "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
       "OMPI_MCA_rmaps_base_oversubscribe=1"
       # Keeps Open MPI's plugins loaded at exit, so LeakSanitizer can name them.
       "OMPI_MCA_mca_base_component_disable_dlclose=1")
elseif(HPOOL_TEST_MPI STREQUAL "mpich")
  # Hydra oversubscribes and runs as root as it is. Left alone it would start
  # its proxies through ssh (or srun, inside an allocation) and listen on the
  # host's name; fork and the loopback interface keep the job on this
  # machine, and UCX (Debian's MPICH is ch4:ucx) off every network device
  # but lo: the ranks talk through shared memory.
  set(HPOOL_TEST_MPIEXEC_FLAGS -launcher fork -iface lo)
  list(APPEND HPOOL_TEST_ENVIRONMENT "UCX_NET_DEVICES=lo")
  # UCX installs its own SIGSEGV/SIGFPE handler, which hpool's crash report
  # hands the signal on to; when two threads of a rank crash at once (the
  # crash test's items 2 and 3), UCX's handler can hang the rank forever
  # (1 run in 8 of test_crash fpe, before this change as after).
  # UCX_HANDLE_ERRORS=none leaves the signal its default action.
  list(APPEND HPOOL_TEST_ENVIRONMENT "UCX_HANDLE_ERRORS=none")
else()
  set(HPOOL_TEST_MPIEXEC_FLAGS "")
endif()
string(REPLACE ";" " " hpool__flag_words "${HPOOL_TEST_MPIEXEC_FLAGS}")
list(APPEND HPOOL_TEST_ENVIRONMENT
     "HPOOL_TEST_MPI=${HPOOL_TEST_MPI}"
     "HPOOL_TEST_MPIEXEC=${MPIEXEC_EXECUTABLE}"
     "HPOOL_TEST_MPIEXEC_FLAGS=${hpool__flag_words}")

# Open MPI's session directory, one per test: two mpiruns that start at
# once (ctest -j) race to create the shared /tmp/ompi.HOST.UID and one fails
# with "mkdir ... File exists" (seen in CI). A direct child of /tmp, so only
# the leaf is created, and short, for the Unix socket paths made inside it.
string(MD5 HPOOL__BUILD_HASH "${CMAKE_BINARY_DIR}")
string(SUBSTRING "${HPOOL__BUILD_HASH}" 0 8 HPOOL__BUILD_HASH)
function(hpool_mpi_session_environment out name)
  if(HPOOL_TEST_MPI STREQUAL "openmpi")
    set(${out} "OMPI_MCA_orte_tmpdir_base=/tmp/hpool-ompi-${HPOOL__BUILD_HASH}-${name}" PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

function(hpool__launcher out ranks)
  if(ranks STREQUAL "plain")
    set(${out} "" PARENT_SCOPE)
  elseif(HPOOL_TEST_LAUNCHER STREQUAL "srun")
    set(${out} "srun;-n;${ranks}" PARENT_SCOPE)
  else()
    set(${out} "${MPIEXEC_EXECUTABLE};${HPOOL_TEST_MPIEXEC_FLAGS};${MPIEXEC_NUMPROC_FLAG};${ranks};${MPIEXEC_PREFLAGS}" PARENT_SCOPE)
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
      set(labels mpi ${T_LABELS})
      set_tests_properties(${name} PROPERTIES ENVIRONMENT "${env}" TIMEOUT ${T_TIMEOUT} LABELS "${labels}")
    endforeach()
  endforeach()
endfunction()

function(hpool_add_mpi_test)
  hpool__add(mpi ${ARGN})
endfunction()

function(hpool_add_script_test)
  hpool__add(script ${ARGN})
endfunction()

function(hpool_skip_test)
  cmake_parse_arguments(T "" "NAME" "WHY" ${ARGN})
  string(REPLACE ";" " " why "${T_WHY}")
  add_test(NAME ${T_NAME} COMMAND sh -c "echo \"SKIPPED under ${HPOOL_TEST_MPI}: $1\"; exit 77" sh "${why}")
  set_tests_properties(${T_NAME} PROPERTIES SKIP_RETURN_CODE 77 LABELS mpi)
endfunction()
