// The declarations are in include/CLinux.h (static inline).
