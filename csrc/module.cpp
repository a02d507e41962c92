// module.cpp — declares pyminidl._C: one bind_<family>() per binding file (bind_common.h).
//
// Every binding checks dtype, rank, shapes, contiguity and aliasing before it touches
// memory and raises ValueError/TypeError naming the argument and the shapes it saw, so no
// input can crash the process. Inputs are taken as py::array (no forcecast: a float64
// array passed where float32 is expected is a TypeError, not a silent copy).
#include "bind_common.h"

PYBIND11_MODULE(_C, m) {
    m.doc() = "pyminidl C++/OpenMP kernels";
    pyminidl::bind::bind_config(m);
    pyminidl::bind::bind_gemm(m);
    pyminidl::bind::bind_activations(m);
    pyminidl::bind::bind_losses(m);
    pyminidl::bind::bind_optim(m);
    pyminidl::bind::bind_image(m);
    // Recurrent layers and Embedding.
    pyminidl::bind::bind_rnn(m);
    // Convolution.
    pyminidl::bind::bind_conv(m);
    // Pooling and normalization (issue 9).
    pyminidl::bind::bind_pool(m);
    pyminidl::bind::bind_norm(m);
    pyminidl::bind::bind_depthwise(m);
    // Row gather of the training loop's batches.
    pyminidl::bind::bind_gather(m);
    pyminidl::bind::bind_dropout(m);
}
