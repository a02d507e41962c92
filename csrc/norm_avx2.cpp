// norm_avx2.cpp — norm_impl.h compiled with -mavx2 -mfma (8 floats a vector;
// -ffp-contract=off keeps FMA out so the bits equal the baseline path's). Chosen at run
// time by norm.cpp; see norm_isa.h.
#include "norm_impl.h"
#include "norm_isa.h"

namespace pyminidl::kernels::avx2 {
PMD_DEFINE_NORM_ENTRY_POINTS
}  // namespace pyminidl::kernels::avx2
