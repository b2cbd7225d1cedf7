# Turns a text file into a C++ source defining `extern const char SYMBOL[]`.
file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUT} "// generated from ${IN}; do not edit\n#include <cstddef>\nnamespace vnetplan {\nextern const char ${SYMBOL}[];\nextern const std::size_t ${SYMBOL}Size;\nconst char ${SYMBOL}[] = {${bytes} 0x00};\nconst std::size_t ${SYMBOL}Size = sizeof(${SYMBOL}) - 1;\n}\n")
