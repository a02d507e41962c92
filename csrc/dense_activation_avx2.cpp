// dense_activation_avx2.cpp — dense_activation_impl.h's loops compiled with -mavx2 -mfma (8 floats a vector);
// -ffp-contract=off keeps FMA out so the bits equal the baseline path's. Chosen at run time by
// dense_activation.cpp; see dense_activation_isa.h.
#include "dense_activation_impl.h"
#include "dense_activation_isa.h"

namespace pyminidl::kernels::avx2 {
PMD_DEFINE_DENSE_ACT_ENTRY_POINTS
}  // namespace pyminidl::kernels::avx2
