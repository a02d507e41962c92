// losses_avx2.cpp — losses_impl.h compiled with -mavx2 -mfma (8 floats a vector);
// -ffp-contract=off keeps FMA out so the bits equal the baseline path's. Chosen at run time
// by losses.cpp; see losses_isa.h.
#include "losses_impl.h"
#include "losses_isa.h"

namespace pyminidl::kernels::avx2 {
PMD_DEFINE_LOSS_ENTRY_POINTS
}  // namespace pyminidl::kernels::avx2
