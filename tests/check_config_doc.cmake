# Fails when docs/config.md differs from `ccci config docs`.
execute_process(COMMAND ${CCCI} config docs OUTPUT_VARIABLE generated
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ccci config docs failed (${rc})")
endif()
file(READ ${DOC} current)
if(NOT generated STREQUAL current)
  message(FATAL_ERROR "${DOC} is not current: run `ccci config docs > docs/config.md`")
endif()
