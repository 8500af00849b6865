# cmake -DCOMMAND=a|b|c -DEXPECT=regex1|regex2 -P expect-report.cmake
# Runs COMMAND (arguments separated by |); passes when it fails and its
# output matches every regex. For the sanitizer reports the emulator's
# tests must provoke.
string(REPLACE "|" ";" command "${COMMAND}")
string(REPLACE "|" ";" expect "${EXPECT}")
execute_process(COMMAND ${command} OUTPUT_VARIABLE out ERROR_VARIABLE out
  RESULT_VARIABLE rc)
if(rc EQUAL 0)
  message(FATAL_ERROR "expected a failure, the command succeeded:\n${out}")
endif()
foreach(regex IN LISTS expect)
  if(NOT out MATCHES "${regex}")
    message(FATAL_ERROR "no match for '${regex}' in:\n${out}")
  endif()
endforeach()
message(STATUS "reported as expected (exit status ${rc})")
