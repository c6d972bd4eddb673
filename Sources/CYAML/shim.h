#ifndef SECRETC_CYAML_SHIM_H
#define SECRETC_CYAML_SHIM_H
#include <yaml.h>
#endif
