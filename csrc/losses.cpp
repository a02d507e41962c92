// losses.cpp
#include "losses.h"
