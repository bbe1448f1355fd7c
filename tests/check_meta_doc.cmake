# Fails when docs/recipe-meta.md differs from `ccci meta docs`.
execute_process(COMMAND ${CCCI} meta docs OUTPUT_VARIABLE generated
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ccci meta docs failed (${rc})")
endif()
file(READ ${DOC} current)
if(NOT generated STREQUAL current)
  message(FATAL_ERROR "${DOC} is not current: run `ccci meta docs > docs/recipe-meta.md`")
endif()
