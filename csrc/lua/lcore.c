/* ctr.core: the table every binding file registers its functions into (see lua/lcore.h for
 * how the binding is laid out).  A new binding file adds one call here. */
#include <lua.h>

#include "lua/lcore.h"

int luaopen_ctr_core(lua_State *L)
{
    lua_newtable(L);
    ctr_lua_register_json(L, -1);
    ctr_lua_register_files(L, -1);
    ctr_lua_register_store(L, -1);
    ctr_lua_register_runtime(L, -1);
    ctr_lua_register_seccomp(L, -1);
    ctr_lua_register_cgroups(L, -1);
    ctr_lua_register_monitor(L, -1);
    ctr_lua_register_http(L, -1);
    ctr_lua_register_spawn(L, -1);
    lua_pushliteral(L, CTRLUA_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
