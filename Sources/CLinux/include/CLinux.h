#ifndef SECRETC_CLINUX_H
#define SECRETC_CLINUX_H

// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's
// Glibc module does not define.
#ifdef __linux__
#define _GNU_SOURCE 1
#include <fcntl.h>

/// Starts writing back a range of a file without waiting (0 or -1 and errno).
static inline int secretc_start_write_back(int fd, long long offset, long long count) {
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}
#else
static inline int secretc_start_write_back(int fd, long long offset, long long count) {
    (void)fd; (void)offset; (void)count;
    return 0;
}
#endif

#endif
