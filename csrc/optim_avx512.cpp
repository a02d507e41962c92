// optim_avx512.cpp — optim_impl.h's loops compiled with -mavx512f/dq/vl/bw (16 floats a vector);
// -ffp-contract=off keeps FMA out so the bits equal the baseline path's. Chosen at run time by
// optim.cpp; see optim_isa.h.
#include "optim_impl.h"
#include "optim_isa.h"

namespace pyminidl::kernels::avx512 {
PMD_DEFINE_OPTIM_ENTRY_POINTS
}  // namespace pyminidl::kernels::avx512
