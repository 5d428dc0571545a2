# SPDX-License-Identifier: GPL-2.0-or-later
#
# Puts the vgpu-stub device into a QEMU source tree, in QEMU's own layout:
#
#   stub-device/hw/...       -> QEMU hw/...        (device source, headers)
#   stub-device/include/...  -> QEMU include/...   (if any)
#   stub-device/tests/...    -> QEMU tests/...     (the qtest, if any)
#   include/vgpu/stub_abi.h  -> QEMU include/vgpu/stub_abi.h (the device ABI,
#                               MIT, shared with the rest of vgpu; from
#                               VGPU_INCLUDE, the project's include/)
#   stub-device/hw/misc/trace-events (or trace-events-vgpu-stub)
#                            -> appended to QEMU hw/misc/trace-events
#   config VGPU_STUB         -> QEMU hw/misc/Kconfig
#   vgpu-stub.c source line  -> QEMU hw/misc/meson.build
#   vgpu-stub-test           -> QEMU tests/qtest/meson.build (if the qtest exists)
#
# Idempotent and incremental: a file in the QEMU tree is written only when
# its content would change, so QEMU's ninja rebuilds only what an edit of
# ours touched (an edit of vgpu-stub.c recompiles that file and relinks).
# Files that disappeared from stub-device/ are removed again, and so are the
# lines that named them.  QEMU's pristine hw/misc/trace-events is kept as
# trace-events.vgpu-orig on the first run and the appended form is rebuilt
# from it every time.
#
#   cmake -DQEMU_SRC=/path/to/qemu -DSTUB_DIR=/path/to/stub-device \
#         -DVGPU_INCLUDE=/path/to/vgpu/include -P patch-qemu.cmake
#
# Works on Debian 12's QEMU 7.2 and on later upstream releases: the meson
# source-set name (softmmu_ss before QEMU 8.1, system_ss after) is taken
# from the tree's own hw/misc/meson.build.
cmake_minimum_required(VERSION 3.20)

foreach(var QEMU_SRC STUB_DIR VGPU_INCLUDE)
  if(NOT DEFINED ${var} OR NOT IS_DIRECTORY "${${var}}")
    message(FATAL_ERROR "patch-qemu: ${var} must name a directory (got '${${var}}')")
  endif()
endforeach()
if(NOT EXISTS "${QEMU_SRC}/hw/misc/meson.build" OR NOT EXISTS "${QEMU_SRC}/hw/misc/Kconfig")
  message(FATAL_ERROR "patch-qemu: ${QEMU_SRC} does not look like a QEMU source tree")
endif()

# Writes CONTENT to PATH unless PATH already holds exactly that, so that
# mtimes, and with them QEMU's ninja, see only real changes.
function(write_if_changed path content)
  if(EXISTS "${path}")
    file(READ "${path}" old)
    if(old STREQUAL content)
      return()
    endif()
  endif()
  file(WRITE "${path}" "${content}")
  message(STATUS "patch-qemu: updated ${path}")
endfunction()

# --- 1. mirror our files into the tree -------------------------------------
# The manifest lists what we put there last time, so a file deleted from
# stub-device/ is deleted from the QEMU tree too (else meson would go on
# compiling a stale copy).
set(manifest "${QEMU_SRC}/.vgpu-stub-files")
set(old_files "")
if(EXISTS "${manifest}")
  file(STRINGS "${manifest}" old_files)
endif()

# Each file's source is _src_<path in the tree>.
set(new_files "")
foreach(sub hw include tests)
  if(IS_DIRECTORY "${STUB_DIR}/${sub}")
    file(GLOB_RECURSE found RELATIVE "${STUB_DIR}" "${STUB_DIR}/${sub}/*")
    foreach(rel IN LISTS found)
      set(_src_${rel} "${STUB_DIR}/${rel}")
    endforeach()
    list(APPEND new_files ${found})
  endif()
endforeach()
# Trace events are merged, not copied; editor droppings are not ours to ship.
list(FILTER new_files EXCLUDE REGEX "(^|/)trace-events[^/]*$")
list(FILTER new_files EXCLUDE REGEX "(~|\\.swp|\\.orig|\\.rej)$")
# The device ABI lives with the project's shared headers, outside stub-device/.
foreach(hdr vgpu/stub_abi.h)
  if(NOT EXISTS "${VGPU_INCLUDE}/${hdr}")
    message(FATAL_ERROR "patch-qemu: ${VGPU_INCLUDE}/${hdr} is missing")
  endif()
  if("include/${hdr}" IN_LIST new_files)
    message(FATAL_ERROR "patch-qemu: ${STUB_DIR}/include/${hdr} would shadow ${VGPU_INCLUDE}/${hdr}")
  endif()
  set(_src_include/${hdr} "${VGPU_INCLUDE}/${hdr}")
  list(APPEND new_files "include/${hdr}")
endforeach()
list(SORT new_files)

foreach(rel IN LISTS new_files)
  if(EXISTS "${QEMU_SRC}/${rel}" AND NOT rel IN_LIST old_files)
    # Never shadow one of QEMU's own files.
    message(FATAL_ERROR "patch-qemu: ${rel} already exists in ${QEMU_SRC} and is not ours")
  endif()
  file(READ "${_src_${rel}}" content)
  get_filename_component(dir "${QEMU_SRC}/${rel}" DIRECTORY)
  file(MAKE_DIRECTORY "${dir}")
  write_if_changed("${QEMU_SRC}/${rel}" "${content}")
endforeach()
foreach(rel IN LISTS old_files)
  if(NOT rel IN_LIST new_files AND EXISTS "${QEMU_SRC}/${rel}")
    file(REMOVE "${QEMU_SRC}/${rel}")
    message(STATUS "patch-qemu: removed ${QEMU_SRC}/${rel}")
  endif()
endforeach()
string(REPLACE ";" "\n" manifest_text "${new_files}")
write_if_changed("${manifest}" "${manifest_text}\n")

if(NOT "hw/misc/vgpu-stub.c" IN_LIST new_files)
  message(FATAL_ERROR "patch-qemu: ${STUB_DIR}/hw/misc/vgpu-stub.c is missing")
endif()

# --- 2. trace events ---------------------------------------------------------
set(trace "${QEMU_SRC}/hw/misc/trace-events")
set(trace_orig "${trace}.vgpu-orig")
if(NOT EXISTS "${trace_orig}")
  file(READ "${trace}" content)
  if(content MATCHES "vgpu_stub_")
    message(FATAL_ERROR "patch-qemu: ${trace} already has vgpu_stub events but no "
                        "${trace_orig}; restore QEMU's original file first")
  endif()
  file(WRITE "${trace_orig}" "${content}")
endif()
file(READ "${trace_orig}" content)
# Ours is hw/misc/trace-events (the path it has in QEMU) or
# hw/misc/trace-events-vgpu-stub; both are taken if both exist.
set(ours "")
foreach(name trace-events trace-events-vgpu-stub)
  if(EXISTS "${STUB_DIR}/hw/misc/${name}")
    file(READ "${STUB_DIR}/hw/misc/${name}" part)
    if(part AND NOT part MATCHES "\n$")
      string(APPEND part "\n")
    endif()
    string(APPEND ours "${part}")
  endif()
endforeach()
if(ours)
  # QEMU's trace-events files group events under a "# file.c" line.
  if(NOT ours MATCHES "^# vgpu-stub\\.c")
    set(ours "# vgpu-stub.c\n${ours}")
  endif()
  if(NOT content MATCHES "\n$")
    string(APPEND content "\n")
  endif()
  string(APPEND content "\n${ours}")
endif()
write_if_changed("${trace}" "${content}")

# --- 3. Kconfig ----------------------------------------------------------------
# Built by default wherever the board has PCI.  (With QEMU's
# --without-default-devices, add CONFIG_VGPU_STUB=y to the devices file.)
set(kconfig "${QEMU_SRC}/hw/misc/Kconfig")
file(READ "${kconfig}" content)
if(NOT content MATCHES "\nconfig VGPU_STUB\n")
  if(NOT content MATCHES "\n$")
    string(APPEND content "\n")
  endif()
  string(APPEND content "\nconfig VGPU_STUB\n    bool\n    default y\n    depends on PCI\n")
  write_if_changed("${kconfig}" "${content}")
endif()

# --- 4. meson source line -----------------------------------------------------
set(meson "${QEMU_SRC}/hw/misc/meson.build")
file(READ "${meson}" content)
if(NOT content MATCHES "'vgpu-stub\\.c'")
  if(content MATCHES "(^|\n)system_ss\\.add")
    set(ss system_ss)      # QEMU 8.1 and later
  elseif(content MATCHES "(^|\n)softmmu_ss\\.add")
    set(ss softmmu_ss)     # QEMU 5.x to 8.0 (Debian 12 has 7.2)
  else()
    message(FATAL_ERROR "patch-qemu: neither system_ss nor softmmu_ss in ${meson}")
  endif()
  if(NOT content MATCHES "\n$")
    string(APPEND content "\n")
  endif()
  string(APPEND content "${ss}.add(when: 'CONFIG_VGPU_STUB', if_true: files('vgpu-stub.c'))\n")
  write_if_changed("${meson}" "${content}")
endif()

# --- 5. the qtest, when there is one ------------------------------------------
# Registered for the x86_64 target only, next to QEMU's own x86 qtests; the
# line goes just before the loop that turns the per-target lists into
# executables.  Removed again when the test file goes away, since meson
# fails on a test whose source is missing.
set(qmeson "${QEMU_SRC}/tests/qtest/meson.build")
set(qline "qtests_x86_64 += config_all_devices.has_key('CONFIG_VGPU_STUB') ? ['vgpu-stub-test'] : []  # vgpu\n")
if(EXISTS "${qmeson}")
  file(READ "${qmeson}" content)
  string(FIND "${content}" "${qline}" at)
  if("tests/qtest/vgpu-stub-test.c" IN_LIST new_files)
    if(at EQUAL -1)
      string(FIND "${content}" "\nqtest_executables = {}" anchor)
      if(anchor EQUAL -1)
        message(FATAL_ERROR "patch-qemu: no 'qtest_executables = {}' in ${qmeson}; "
                            "add vgpu-stub-test to qtests_x86_64 by hand")
      endif()
      math(EXPR anchor "${anchor} + 1")
      string(SUBSTRING "${content}" 0 ${anchor} head)
      string(SUBSTRING "${content}" ${anchor} -1 tail)
      write_if_changed("${qmeson}" "${head}${qline}\n${tail}")
    endif()
  elseif(NOT at EQUAL -1)
    string(REPLACE "${qline}\n" "" content "${content}")
    string(REPLACE "${qline}" "" content "${content}")
    write_if_changed("${qmeson}" "${content}")
  endif()
endif()
