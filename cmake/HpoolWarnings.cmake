# HpoolWarnings.cmake: the one place the project's warning flags are set.
#
#   hpool_warnings(target...)   gives each target the project's warnings, and
#                               -Werror when HPOOL_WERROR is ON (CI turns it on).
#
# -Wno-unused-parameter: every callback takes a `void *user` (and often a
# task or span) that many implementations ignore on purpose.

option(HPOOL_WERROR "Treat compiler warnings as errors" OFF)

function(hpool_warnings)
  foreach(target IN LISTS ARGN)
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter
                           $<$<BOOL:${HPOOL_WERROR}>:-Werror>)
  endforeach()
endfunction()
