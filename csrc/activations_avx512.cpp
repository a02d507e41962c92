// activations_avx512.cpp — activations_impl.h compiled with -mavx512f/dq/vl/bw (16 floats a
// vector; -ffp-contract=off keeps FMA out so the bits equal the baseline path's). Chosen
// at run time by activations.cpp; see activations_isa.h.
#include "activations_impl.h"
#include "activations_isa.h"

namespace pyminidl::kernels::avx512 {
PMD_DEFINE_ACTIVATION_ENTRY_POINTS
}  // namespace pyminidl::kernels::avx512
