// rnn_avx2.cpp — rnn_impl.h compiled with the avx2 flags (see CMakeLists.txt); chosen at run
// time by rnn.cpp.
#define PMD_RNN_ISA avx2
#include "rnn_impl.h"
#include "rnn_infer_impl.h"
