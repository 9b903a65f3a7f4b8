# Injected with -DCMAKE_PROJECT_INCLUDE=... when building interface packages against ROS 2
# wheels from PyPI (no ROS install). Not used on a ROS install.
#
# The wheels' exported *__rosidl_generator_py targets hard-code the include directories of
# the machine that built them (/opt/python/cp311-cp311/...). CMake refuses imported targets
# whose include directories do not exist. At the end of configuration we point those targets
# at this interpreter's Python and NumPy include directories instead.
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)

function(_sitebot_fix_pypi_include_dirs)
  get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(_t IN LISTS _targets)
    get_target_property(_dirs ${_t} INTERFACE_INCLUDE_DIRECTORIES)
    if(_dirs AND "${_dirs}" MATCHES "/opt/python/cp3")
      set(_fixed "")
      foreach(_d IN LISTS _dirs)
        if(_d MATCHES "numpy")
          list(APPEND _fixed "${Python3_NumPy_INCLUDE_DIRS}")
        elseif(_d MATCHES "/opt/python/cp3.*/include/python")
          list(APPEND _fixed "${Python3_INCLUDE_DIRS}")
        else()
          list(APPEND _fixed "${_d}")
        endif()
      endforeach()
      set_target_properties(${_t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
    endif()
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _sitebot_fix_pypi_include_dirs)
