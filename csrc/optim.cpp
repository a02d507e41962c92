// optim.cpp
#include "optim.h"
