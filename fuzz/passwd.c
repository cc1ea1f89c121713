/* An image's /etc/passwd and /etc/group (untrusted: read from the container's rootfs), through
 * ctr.oci: parse_passwd, parse_group and the user and group lookups of with_user,
 * with_additional_gids and with_image_config (the image's User string).  The input is the
 * passwd text, a NUL, the group text, a NUL, and the USER string; fuzz/passwd.lua makes the
 * calls. */
#include <stddef.h>
#include <stdint.h>

#include "luahost.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ctr_fuzz_lua_init("passwd");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ctr_fuzz_lua_run(data, size);
    return 0;
}
