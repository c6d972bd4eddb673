#ifndef SECRETC_CGPGME_SHIM_H
#define SECRETC_CGPGME_SHIM_H
#include <gpgme.h>
#endif
