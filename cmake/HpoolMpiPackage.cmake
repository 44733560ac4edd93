# HpoolMpiPackage.cmake: which MPI the installed package files (hpoolConfig.cmake, hpool.pc) name.
#
#   hpool_mpi_package_settings()   sets HPOOL_MPI_C_COMPILER, HPOOL_PC_MPI_REQUIRES,
#                                  HPOOL_PC_MPI_CFLAGS, HPOOL_PC_MPI_LIBS and
#                                  HPOOL_PC_LIBS_PRIVATE from what find_package(MPI)
#                                  and find_package(OpenMP) found.
#
# Open MPI and MPICH differ in ABI (an MPI_Comm is a pointer in one, an int
# in the other), and hpool.h takes an MPI_Comm, so a consumer must build
# with the MPI hpool was built with, whichever mpicc the alternatives
# system points to later. The package remembers that MPI's compiler wrapper
# through Debian's alternatives (/usr/bin/mpicc -> /etc/alternatives/mpi ->
# /usr/bin/mpicc.mpich), but no further: Open MPI's mpicc.openmpi is a link
# to opal_wrapper, which needs the name it is called by. The .pc file names
# that MPI's own pkg-config module: the one whose -I holds the mpi.h found.

function(hpool_mpi_package_settings)
  set(HPOOL_MPI_C_COMPILER "${MPI_C_COMPILER}")
  while(IS_SYMLINK "${HPOOL_MPI_C_COMPILER}")
    file(READ_SYMLINK "${HPOOL_MPI_C_COMPILER}" target)
    get_filename_component(directory "${HPOOL_MPI_C_COMPILER}" DIRECTORY)
    get_filename_component(target "${target}" ABSOLUTE BASE_DIR "${directory}")
    if(NOT HPOOL_MPI_C_COMPILER MATCHES "^/etc/alternatives/" AND NOT target MATCHES "^/etc/alternatives/")
      break()
    endif()
    set(HPOOL_MPI_C_COMPILER "${target}")
  endwhile()
  set(HPOOL_PC_MPI_REQUIRES "")
  set(HPOOL_PC_MPI_CFLAGS "")
  set(HPOOL_PC_MPI_LIBS "")
  find_package(PkgConfig QUIET)
  foreach(module IN ITEMS ompi-c mpich)
    if(PKG_CONFIG_FOUND AND NOT HPOOL_PC_MPI_REQUIRES)
      execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --cflags-only-I ${module}
                      OUTPUT_VARIABLE flags RESULT_VARIABLE failed ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
      separate_arguments(flags UNIX_COMMAND "${flags}")
      if(NOT failed AND "-I${MPI_C_HEADER_DIR}" IN_LIST flags)
        set(HPOOL_PC_MPI_REQUIRES ${module})
        message(STATUS "hpool.pc: Requires ${module}")
      endif()
    endif()
  endforeach()
  if(NOT HPOOL_PC_MPI_REQUIRES)
    # An MPI without a module of its own: its flags, as CMake found them.
    message(STATUS "hpool.pc: no pkg-config module has ${MPI_C_HEADER_DIR}/mpi.h; MPI's flags go in as found")
    foreach(dir IN LISTS MPI_C_INCLUDE_DIRS)
      string(APPEND HPOOL_PC_MPI_CFLAGS " -I${dir}")
    endforeach()
    foreach(library IN LISTS MPI_C_LIBRARIES)
      string(APPEND HPOOL_PC_MPI_LIBS " ${library}")
    endforeach()
  endif()
  # What libhpool.a needs besides MPI: OpenMP's runtime, threads, libm.
  string(JOIN " " HPOOL_PC_LIBS_PRIVATE ${OpenMP_C_FLAGS} ${CMAKE_THREAD_LIBS_INIT} -lm)
  foreach(name IN ITEMS HPOOL_MPI_C_COMPILER HPOOL_PC_MPI_REQUIRES HPOOL_PC_MPI_CFLAGS HPOOL_PC_MPI_LIBS HPOOL_PC_LIBS_PRIVATE)
    set(${name} "${${name}}" PARENT_SCOPE)
  endforeach()
endfunction()
