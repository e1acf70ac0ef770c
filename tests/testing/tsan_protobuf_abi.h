// ThreadSanitizer builds only (TESSERA_SANITIZE=thread; the top-level CMakeLists.txt
// force-includes this header in every C++ file). Debian's libprotobuf is not built with
// TSan, but protobuf's map_field.h gives MapFieldBase two extra members (seq1_, seq2_)
// when __SANITIZE_THREAD__ is defined: code built with TSan then disagrees with the library
// on the layout of every map field (google.protobuf.Struct's fields, for one) and reads
// garbage (a SEGV in Map::at). Including map_field.h here first, with the macro hidden,
// gives the library's layout; its include guard keeps that for every later include.
// libstdc++'s configuration is read first, so that it still knows TSan is on.
#ifndef TESSERA_TESTS_TESTING_TSAN_PROTOBUF_ABI_H_
#define TESSERA_TESTS_TESTING_TSAN_PROTOBUF_ABI_H_

#ifdef __cplusplus
#include <bits/c++config.h>

#pragma push_macro("__SANITIZE_THREAD__")
#undef __SANITIZE_THREAD__
#include <google/protobuf/map_field.h>
#pragma pop_macro("__SANITIZE_THREAD__")
#endif

#endif  // TESSERA_TESTS_TESTING_TSAN_PROTOBUF_ABI_H_
