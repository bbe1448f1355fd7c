# Embed a text file in the binary: cmake -DIN=file -DOUT=file.c -DNAME=sym -P
# embed.cmake writes OUT defining `const char NAME[]` (the bytes of IN, then
# a NUL) and `const size_t NAME_len` (without the NUL). CMakeLists.txt's
# ccci_embed() runs it for each embedded file whenever the file changes.
foreach(v IN ITEMS IN OUT NAME)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "embed.cmake: -D${v}=... is required")
  endif()
endforeach()
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" nhex)
math(EXPR n "${nhex} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# A NUL byte would cut the text that ccci_testlib_source() returns.
string(FIND "${bytes}" "0x00," nul)
if(NOT nul EQUAL -1)
  message(FATAL_ERROR "embed.cmake: ${IN} holds a NUL byte")
endif()
# Sixteen bytes a line (CMake's regular expressions have no {n}).
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line)
string(REGEX REPLACE "(${line})" "\\1\n" bytes "${bytes}")
get_filename_component(base "${IN}" NAME)
file(WRITE "${OUT}.tmp"
"/* Generated from ${base} by python/embed.cmake at build time: do not edit. */
#include <stddef.h>

extern const char ${NAME}[];
extern const size_t ${NAME}_len;

const char ${NAME}[] = {
${bytes}
0x00};
const size_t ${NAME}_len = ${n};
")
file(RENAME "${OUT}.tmp" "${OUT}")
