#ifndef CHEAP_H
#define CHEAP_H
#include <stddef.h>

/// Bytes the allocator has handed out and not yet had back (mallinfo2), or 0 where unknown.
size_t cheap_heap_in_use(void);

#endif
