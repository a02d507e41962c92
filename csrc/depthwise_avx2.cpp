// depthwise_avx2.cpp — depthwise_impl.h compiled with -mavx2 -mfma (8 floats a vector;
// -ffp-contract=off keeps FMA out so the bits equal the baseline path's). Chosen at run time by
// depthwise.cpp; see depthwise_isa.h.
#include "depthwise_impl.h"
#include "depthwise_isa.h"

namespace pyminidl::kernels::avx2 {
PMD_DEFINE_DEPTHWISE_ENTRY_POINTS
}  // namespace pyminidl::kernels::avx2
