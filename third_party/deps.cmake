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
  "crypto|libcrypto>=3.0|libssl-dev"
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

# http-parser (the HTTP front's request parser) ships no pkg-config module on
# Debian: its header and library are found by name, and its version is
# checked from the header's HTTP_PARSER_VERSION_* macros.
find_path(CCCI_HTTP_PARSER_INCLUDE http_parser.h)
find_library(CCCI_HTTP_PARSER_LIB http_parser)
if(NOT CCCI_HTTP_PARSER_INCLUDE OR NOT CCCI_HTTP_PARSER_LIB)
  message(FATAL_ERROR "ccci needs http-parser >= 2.9 (http_parser.h and libhttp_parser): install the Debian package libhttp-parser-dev")
endif()
file(STRINGS "${CCCI_HTTP_PARSER_INCLUDE}/http_parser.h" CCCI_HP_VER
     REGEX "^#define HTTP_PARSER_VERSION_(MAJOR|MINOR) [0-9]+")
string(REGEX REPLACE ".*MAJOR ([0-9]+).*" "\\1" CCCI_HP_MAJOR "${CCCI_HP_VER}")
string(REGEX REPLACE ".*MINOR ([0-9]+).*" "\\1" CCCI_HP_MINOR "${CCCI_HP_VER}")
if(NOT CCCI_HP_MAJOR EQUAL 2 OR CCCI_HP_MINOR LESS 9)
  message(FATAL_ERROR "ccci needs http-parser 2.9 or a later 2.x, found ${CCCI_HP_MAJOR}.${CCCI_HP_MINOR}: install the Debian package libhttp-parser-dev")
endif()
target_include_directories(ccci_deps INTERFACE "${CCCI_HTTP_PARSER_INCLUDE}")
target_link_libraries(ccci_deps INTERFACE "${CCCI_HTTP_PARSER_LIB}")

if(CCCI_TESTS)
  pkg_check_modules(CCCI_CMOCKA IMPORTED_TARGET "cmocka>=1.1")
  if(NOT CCCI_CMOCKA_FOUND)
    message(FATAL_ERROR "ccci's tests need cmocka>=1.1: install the Debian package libcmocka-dev")
  endif()
endif()
