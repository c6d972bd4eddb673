#ifndef SECRETC_CLINUX_H
#define SECRETC_CLINUX_H

// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's
// Glibc module does not define.
#ifdef __linux__
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <malloc.h>

/// Starts writing back a range of a file without waiting (0 or -1 and errno).
static inline int secretc_start_write_back(int fd, long long offset, long long count) {
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}

/// Hands the allocator's free memory back to the system (malloc.h, which
/// the Glibc module leaves out).
static inline void secretc_release_free_memory(void) {
    malloc_trim(0);
}
#else
static inline void secretc_release_free_memory(void) {}

static inline int secretc_start_write_back(int fd, long long offset, long long count) {
    (void)fd; (void)offset; (void)count;
    return 0;
}
#endif

#endif
