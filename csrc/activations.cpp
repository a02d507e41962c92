// activations.cpp
#include "activations.h"
