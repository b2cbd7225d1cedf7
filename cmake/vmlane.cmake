# The stock-kernel lane in ctest: a gtest binary's tests run inside a qemu VM that boots Debian's stock kernel
# (scripts/vmlane/run.sh), for the kernel features the CI machines' own kernel lacks.
#
#   vmlane_add_gtest(<target> [FILTER <gtest filter>] [INCLUDE <path>...] [MACHINE pc|q35|q35-iommu]
#                    [NIC e1000] [MEM <MB>] [TIMEOUT <seconds>])
#
# registers, all labelled `vmlane`:
#   vm/<target>        fixture setup: boots the VM once and runs every test matching FILTER (gtest JSON output)
#   vm/<Suite>.<Test>  one per gtest case, listed from the binary on the host after each build: reports that
#                      case's result from the JSON (pass; fail with its failure messages; skip as "SKIPPED: ...")
# When this machine cannot run the lane (no qemu, no kernel unpacked by scripts/packages/vmlane.sh), every one of
# them prints "SKIPPED: <reason>". INCLUDE paths (files or directories; generator expressions allowed, e.g.
# $<TARGET_FILE:vnetplan>) are copied into the VM at the same absolute paths; the test binary always is.
set(VMLANE_DIR ${CMAKE_CURRENT_LIST_DIR})

function(vmlane_add_gtest target)
  cmake_parse_arguments(PARSE_ARGV 1 VM "" "FILTER;MACHINE;NIC;MEM;TIMEOUT" "INCLUDE")
  if(NOT VM_FILTER)
    set(VM_FILTER "*")
  endif()
  if(NOT VM_TIMEOUT)
    set(VM_TIMEOUT 600)
  endif()
  set(lane_args --timeout ${VM_TIMEOUT})
  if(VM_MACHINE)
    list(APPEND lane_args --machine ${VM_MACHINE})
  endif()
  if(VM_NIC)
    list(APPEND lane_args --nic ${VM_NIC})
  endif()
  if(VM_MEM)
    list(APPEND lane_args --mem ${VM_MEM})
  endif()
  foreach(p IN LISTS VM_INCLUDE)
    list(APPEND lane_args --include ${p})
  endforeach()

  set(work ${CMAKE_CURRENT_BINARY_DIR}/vmlane/${target})
  set(tests_file ${work}/ctest_tests.cmake)
  # The list of cases exists only once the binary is built; until then ctest shows one placeholder test.
  set(include_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_vmlane_include.cmake)
  file(WRITE ${include_file}
    "if(EXISTS \"${tests_file}\")\n"
    "  include(\"${tests_file}\")\n"
    "else()\n"
    "  add_test(vm/${target}_NOT_BUILT ${CMAKE_COMMAND} -E echo \"${target} is not built: no lane tests\")\n"
    "  set_tests_properties(vm/${target}_NOT_BUILT PROPERTIES LABELS vmlane WILL_FAIL TRUE)\n"
    "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${include_file})

  # Lists the cases on the host after every link and writes the ctest file (both the fixture and the cases).
  # A list cannot cross -D intact; the discover script splits it again.
  string(JOIN "::vmlane::" lane_args_joined ${lane_args})
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND}
      -DBINARY=$<TARGET_FILE:${target}> -DTARGET=${target} -DFILTER=${VM_FILTER} -DWORK=${work}
      -DOUT=${tests_file} -DLANE=${VMLANE_DIR}/../scripts/vmlane/ctest-lane.sh
      -DREPORT=${VMLANE_DIR}/vmlane_report.cmake -DTIMEOUT=${VM_TIMEOUT} "-DLANE_ARGS=${lane_args_joined}"
      -P ${VMLANE_DIR}/vmlane_discover.cmake
    BYPRODUCTS ${tests_file}
    VERBATIM)
  # A change to the discover script relinks the target, so that its POST_BUILD step writes the ctest file anew.
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${VMLANE_DIR}/vmlane_discover.cmake)
endfunction()
