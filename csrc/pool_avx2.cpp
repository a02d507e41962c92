// pool_avx2.cpp — pool_impl.h compiled with -mavx2 -mfma (8 floats a vector;
// -ffp-contract=off keeps FMA out so the bits equal the baseline path's). Chosen at run time by pool.cpp; see pool_isa.h.
#include "pool_impl.h"
#include "pool_isa.h"

namespace pyminidl::kernels::avx2 {
PMD_DEFINE_POOL_ENTRY_POINTS
}  // namespace pyminidl::kernels::avx2
