/* The Lua modules and scripts built into the host as LuaJIT bytecode (the table is generated
 * by the Makefile into $(BUILD)/obj/bc/embedded.c).
 *
 * Each entry records the size and mtime of the source file it was compiled from; the host
 * loads the bytecode only while the file it would otherwise load has that same size and
 * mtime, so an edited module (in the tree, or an installed one) is the one that runs.
 *
 * bc_len is the blob's length: the host reads a blob from its own executable file (see
 * host.c, bc_read) and never touches its bytes in memory. */
#ifndef CTR_LUA_EMBEDDED_H
#define CTR_LUA_EMBEDDED_H

#include <stddef.h>

struct ctr_embedded {
    const char *name; /* a module name (ctr.client), or a script's file name (run.lua) */
    int script;
    const char *bc;   /* bytecode: its address, which names its place in the executable */
    size_t bc_len;
    long long size;
    long long mtime_sec;
    long mtime_nsec;
};

extern const struct ctr_embedded ctr_embedded[];
extern const size_t ctr_embedded_count;

#endif
