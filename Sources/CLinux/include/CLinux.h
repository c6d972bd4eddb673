#ifndef SECRETC_CLINUX_H
#define SECRETC_CLINUX_H

// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's
// Glibc module does not define.
#ifdef __linux__
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/prctl.h>

/// Starts writing back a range of a file without waiting (0 or -1 and errno).
static inline int secretc_start_write_back(int fd, long long offset, long long count) {
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}

/// Hands the allocator's free memory back to the system (malloc.h, which
/// the Glibc module leaves out).
static inline void secretc_release_free_memory(void) {
    malloc_trim(0);
}

/// Marks the process non-dumpable, as ssh-agent and gpg-agent do: no core
/// file, and other processes of the same user (a debugger, a crash
/// reporter reading its memory) may not attach or read /proc/PID/mem.
/// (prctl is variadic: Swift cannot call it.) 0, or -1 and errno.
static inline int secretc_set_non_dumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/// Leaves a range of memory out of core files (rounded out to whole pages).
static inline int secretc_exclude_from_core_dumps(void *start, unsigned long length) {
    unsigned long page = 4096;
    unsigned long first = (unsigned long)start & ~(page - 1);
    unsigned long end = ((unsigned long)start + length + page - 1) & ~(page - 1);
    return madvise((void *)first, end - first, MADV_DONTDUMP);
}
#else
static inline int secretc_set_non_dumpable(void) { return 0; }
static inline int secretc_exclude_from_core_dumps(void *start, unsigned long length) {
    (void)start; (void)length;
    return 0;
}
static inline void secretc_release_free_memory(void) {}

static inline int secretc_start_write_back(int fd, long long offset, long long count) {
    (void)fd; (void)offset; (void)count;
    return 0;
}
#endif

#endif
