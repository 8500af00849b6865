# cmake -DOUT=FILE.inc -DNAME=IDENT -DIN=FILE -P EmbedText.cmake
# Writes FILE's text as `static const char IDENT[]`, a raw string literal
# (in pieces under the compilers' literal limit): generated headers are
# #included, so every build tool and ccache sees when FILE changes.
file(READ "${IN}" text)
string(LENGTH "${text}" size)
set(out "// Generated from ${IN} by EmbedText.cmake: do not edit.\nstatic const char ${NAME}[] =\n")
set(pos 0)
while(pos LESS size)
  string(SUBSTRING "${text}" ${pos} 8000 piece)
  string(APPEND out "R\"rwkv_embed(${piece})rwkv_embed\"\n")
  math(EXPR pos "${pos} + 8000")
endwhile()
string(APPEND out ";\n")
file(WRITE "${OUT}.tmp" "${out}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
