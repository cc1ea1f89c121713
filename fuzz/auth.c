/* A registry's 401 challenges and its token server's answers (untrusted: both come from the
 * network), through ctr.remotes.auth: parse_challenges of Www-Authenticate values, and the
 * authorizer that picks a challenge, fetches a token from its realm (through a session that
 * answers with the input's body) and makes the Authorization header.  The input is the
 * header values, one a line, a NUL, and the token server's body; fuzz/auth.lua makes the
 * calls. */
#include <stddef.h>
#include <stdint.h>

#include "luahost.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ctr_fuzz_lua_init("auth");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ctr_fuzz_lua_run(data, size);
    return 0;
}
