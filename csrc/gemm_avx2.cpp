// gemm_avx2.cpp — ISA-specific GEMM micro-kernels (filled by the blocked GEMM).
#include "gemm.h"
