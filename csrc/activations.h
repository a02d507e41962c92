// activations.h — see activations.cpp for the contents.
#pragma once

#include "common.h"

namespace pyminidl::kernels {}  // namespace pyminidl::kernels
