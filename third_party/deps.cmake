# How ccci finds its dependencies: pkg-config modules of the Debian 12
# packages listed in third_party/README.md. Nothing is downloaded; a missing
# or too old library stops the configure step with the package to install.
find_package(PkgConfig REQUIRED)

# name, pkg-config module with the minimum version, Debian package
set(CCCI_DEPS
  "libuv|libuv>=1.44|libuv1-dev"
  "curl|libcurl>=7.88|libcurl4-openssl-dev"
  "yaml|yaml-0.1>=0.2.5|libyaml-dev"
  "jansson|jansson>=2.14|libjansson-dev"
)

add_library(ccci_deps INTERFACE)
add_library(ccci::deps ALIAS ccci_deps)
foreach(dep ${CCCI_DEPS})
  string(REPLACE "|" ";" parts "${dep}")
  list(GET parts 0 name)
  list(GET parts 1 module)
  list(GET parts 2 debpkg)
  pkg_check_modules(CCCI_DEP_${name} IMPORTED_TARGET "${module}")
  if(NOT CCCI_DEP_${name}_FOUND)
    message(FATAL_ERROR "ccci needs ${module}: install the Debian package ${debpkg}")
  endif()
  target_link_libraries(ccci_deps INTERFACE PkgConfig::CCCI_DEP_${name})
endforeach()

if(CCCI_TESTS)
  pkg_check_modules(CCCI_CMOCKA IMPORTED_TARGET "cmocka>=1.1")
  if(NOT CCCI_CMOCKA_FOUND)
    message(FATAL_ERROR "ccci's tests need cmocka>=1.1: install the Debian package libcmocka-dev")
  endif()
endif()
