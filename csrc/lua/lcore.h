/* Helpers shared by the sections of lua/lcore.c and by lua/host.c. Only lua/host.c and lua/lcore.c include
 * Lua's headers; the rest of csrc/ is a plain C library. */
#ifndef CTR_LCORE_H
#define CTR_LCORE_H

#include <lua.h>

#include "base/error.h"

#ifndef CTRLUA_VERSION
#define CTRLUA_VERSION "0.1.0"
#endif

int luaopen_ctr_core(lua_State *L);
/* The transfer layer's functions (lua/lhttp.c), into the table at index `table`. */
void ctr_lua_register_http(lua_State *L, int table);
/* spawn, running a program without a shell (lua/lspawn.c), into the table at index `table`. */
void ctr_lua_register_spawn(lua_State *L, int table);

/* push nil, message, errno; returns 3 */
int ctr_lua_fail(lua_State *L, const struct ctr_err *e);
int ctr_lua_errno(lua_State *L, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Read optional fields of an options table at idx (absent table or field: the default; a
 * field of the wrong type raises, naming it). */
const char *ctr_lua_optfield_string(lua_State *L, int idx, const char *field, const char *def);
lua_Number ctr_lua_optfield_number(lua_State *L, int idx, const char *field, lua_Number def);
int ctr_lua_optfield_bool(lua_State *L, int idx, const char *field, int def);

#endif
