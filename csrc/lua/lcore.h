/* The Lua binding of the C core, ctr.core, and the helpers its files share.
 *
 * One binding file per subsystem (lua/lfiles.c, lua/lstore.c, lua/lruntime.c, lua/lcgroups.c,
 * lua/lmonitor.c, lua/lhttp.c), each with a ctr_lua_register_X(L, table) that sets its
 * functions into the table at index `table`; lua/lcore.c makes the table and calls each.  A
 * binding file only marshals: it checks the arguments, calls one plain-C primitive and pushes
 * its result, or `nil, message, errno` (ctr_lua_fail is the one place where a struct ctr_err
 * becomes Lua values).  Misuse (a wrong argument type) raises, naming the parameter.  Nothing
 * calls back into Lua, and nothing Lua runs between fork and execve.
 *
 * Only lua/host.c and these files include Lua's headers; the rest of csrc/ is a plain C library.
 */
#ifndef CTR_LCORE_H
#define CTR_LCORE_H

#include <lauxlib.h>
#include <lua.h>

#include "base/error.h"
#include "base/number.h"

#ifndef CTRLUA_VERSION
#define CTRLUA_VERSION "0.1.0"
#endif

int luaopen_ctr_core(lua_State *L);

/* Each binding file's functions, into the table at index `table`. */
void ctr_lua_register_json(lua_State *L, int table);     /* lua/binding.c */
void ctr_lua_register_files(lua_State *L, int table);    /* lua/lfiles.c */
void ctr_lua_register_store(lua_State *L, int table);    /* lua/lstore.c */
void ctr_lua_register_runtime(lua_State *L, int table);  /* lua/lruntime.c */
void ctr_lua_register_seccomp(lua_State *L, int table);  /* lua/lseccomp.c */
void ctr_lua_register_cgroups(lua_State *L, int table);  /* lua/lcgroups.c */
void ctr_lua_register_monitor(lua_State *L, int table);  /* lua/lmonitor.c */
void ctr_lua_register_http(lua_State *L, int table);     /* lua/lhttp.c: the transfer layer */
void ctr_lua_register_spawn(lua_State *L, int table);    /* lua/lspawn.c: programs, no shell */

/* Set each function of regs (ending {NULL, NULL}) into the table at index `table`. */
void ctr_lua_setfuncs(lua_State *L, int table, const luaL_Reg *regs);

/* push nil, message, errno; returns 3.  A failure of the container's program itself
 * (err->program) adds nil and true: 5 (create puts the init's death in that nil's place). */
int ctr_lua_fail(lua_State *L, const struct ctr_err *e);
int ctr_lua_errno(lua_State *L, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Read optional fields of an options table at idx (absent table or field: the default; a
 * field of the wrong type raises, naming it). */
const char *ctr_lua_optfield_string(lua_State *L, int idx, const char *field, const char *def);
lua_Number ctr_lua_optfield_number(lua_State *L, int idx, const char *field, lua_Number def);
int ctr_lua_optfield_bool(lua_State *L, int idx, const char *field, int def);
/* An fd number at opts[field] (stdin=, stdout=, ...); -1 when absent. */
int ctr_lua_optfield_fd(lua_State *L, int idx, const char *field);
/* What core.cgroup_hierarchy returned, at opts[field]; NULL when absent (lua/lcgroups.c). */
struct ctr_cgroup_layout;
const struct ctr_cgroup_layout *ctr_lua_optfield_hierarchy(lua_State *L, int idx,
                                                           const char *field);

/* JSON (lua/binding.c).  core.array_mt marks a table that is a JSON array even when empty;
 * core.null is JSON null. */
void ctr_lua_push_array_mt(lua_State *L);
/* core.json_encode(value[, pretty]) -> text; a lua_CFunction, callable from C too */
int ctr_lua_json_encode(lua_State *L);

/* A wait status as the runtime's functions return it (lua/lruntime.c): pushes the exit code
 * and {status=, signal=, core_dumped=}; returns 2. */
int ctr_lua_push_status(lua_State *L, int status);
/* nil, message, errno, and for an init that died on its own during create a fourth value:
 * {exit_code = 128+N or its status, signal = N, oom = bool} (lua/lruntime.c) */
struct ctr_init_death;
int ctr_lua_create_fail(lua_State *L, const struct ctr_err *e, const struct ctr_init_death *d);

#endif
