// rnn_avx512.cpp — rnn_impl.h compiled with the avx512 flags (see CMakeLists.txt); chosen at run
// time by rnn.cpp.
#define PMD_RNN_ISA avx512
#include "rnn_impl.h"
#include "rnn_infer_impl.h"
