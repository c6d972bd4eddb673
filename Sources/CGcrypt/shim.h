#ifndef SECRETC_CGCRYPT_SHIM_H
#define SECRETC_CGCRYPT_SHIM_H
#include <gcrypt.h>

// gcry_control is variadic and gcry_cipher_reset a macro: Swift can call neither.

/// Initializes libgcrypt unless the process already has (a host
/// application's own settings, secure memory included, are kept).
/// Returns 0 when the library is older than the version given.
static inline int secretc_gcrypt_initialize(const char *minimum_version) {
    if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) return 1;
    if (!gcry_check_version(minimum_version)) return 0;
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    return 1;
}

/// gcry_cipher_reset, a macro Swift cannot see.
static inline gcry_error_t secretc_gcrypt_cipher_reset(gcry_cipher_hd_t handle) {
    return gcry_cipher_reset(handle);
}
#endif
