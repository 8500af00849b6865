#include "TestFiles.h"
