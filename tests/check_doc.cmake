# Fails when the generated document DOC differs from what the command GEN
# (a ;-separated list: the program, then its arguments) prints.
string(REPLACE " " ";" gen "${GEN}")
execute_process(COMMAND ${gen} OUTPUT_VARIABLE generated RESULT_VARIABLE rc)
string(REPLACE ";" " " shown "${gen}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${shown} failed (${rc})")
endif()
file(READ ${DOC} current)
if(NOT generated STREQUAL current)
  message(FATAL_ERROR "${DOC} is not current: run `${shown} > ${DOC}`")
endif()
