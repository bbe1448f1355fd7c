# Fails when docs/hooks.md differs from `ccci meta hooks`.
execute_process(COMMAND ${CCCI} meta hooks OUTPUT_VARIABLE generated
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ccci meta hooks failed (${rc})")
endif()
file(READ ${DOC} current)
if(NOT generated STREQUAL current)
  message(FATAL_ERROR "${DOC} is not current: run `ccci meta hooks > docs/hooks.md`")
endif()
