# SPDX-License-Identifier: Apache-2.0
# The fake runtime and driver's sources, for the library (CMakeLists.txt here)
# and for the fuzzers that compile them in (fuzz/CMakeLists.txt).
set(VGPU_FAKECUDA_SOURCES
  errors.c tables.c memory.c exec.c device.c device_attr.c
  driver.c driver_errors.c driver_mem.c driver_exec.c driver_stream.c driver_vmm.c
  driver_pool.c driver_graph.c hostfn.c managed.c array.c user_object.c ipc.c)
list(TRANSFORM VGPU_FAKECUDA_SOURCES PREPEND ${CMAKE_CURRENT_LIST_DIR}/)
