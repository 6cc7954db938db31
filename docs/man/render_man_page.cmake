# cmake -P script: SOURCE (markdown) -> OUTPUT (roff) through GO_MD2MAN, with the title line
# (NAME, SECTION, date, version, MANUAL) added in front. A line "<!-- insert FILE -->" in SOURCE is
# replaced by FILE (relative to SOURCE) without its own "# title" line: the page's NAME stands
# for it. The date honours SOURCE_DATE_EPOCH (dpkg-buildpackage sets it from debian/changelog).
foreach(var GO_MD2MAN SOURCE OUTPUT NAME SECTION MANUAL VERSION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "render_man_page.cmake: -D${var}=... is required")
  endif()
endforeach()

file(READ ${SOURCE} text)
get_filename_component(source_dir ${SOURCE} DIRECTORY)
string(REGEX MATCHALL "<!-- insert [^ ]+ -->" inserts "${text}")
foreach(marker ${inserts})
  string(REGEX REPLACE "<!-- insert ([^ ]+) -->" "\\1" file "${marker}")
  file(READ ${source_dir}/${file} inserted)
  string(REGEX REPLACE "^# [^\n]*\n" "" inserted "${inserted}")
  string(REPLACE "${marker}" "${inserted}" text "${text}")
endforeach()

string(TOUPPER ${NAME} upper_name)
string(TIMESTAMP date "%Y-%m-%d" UTC)
set(markdown ${OUTPUT}.md)
file(WRITE ${markdown}
     "% ${upper_name} ${SECTION} \"${date}\" \"tlsbridge ${VERSION}\" \"${MANUAL}\"\n\n${text}")
execute_process(COMMAND ${GO_MD2MAN} -in ${markdown} -out ${OUTPUT} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "go-md2man failed on ${markdown}: ${result}")
endif()
