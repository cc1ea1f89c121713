/* Image index, manifest and config documents (untrusted: they come from an image archive or a
 * registry), through the Lua code that reads them: core.json_decode (cJSON into Lua tables),
 * ctr.images (resolution of a target to the manifest and config of a platform, platforms,
 * check, size; archive_images for an archive's index.json or docker manifest.json), the chain
 * IDs of ctr.store.unpack, and oci.with_image_config (the image config's Env, Cmd, Entrypoint,
 * WorkingDir, User made into a spec).  The input is up to eight documents separated by NUL
 * bytes; fuzz/manifest.lua says how they are stored and which calls are made. */
#include <stddef.h>
#include <stdint.h>

#include "luahost.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ctr_fuzz_lua_init("manifest");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ctr_fuzz_lua_run(data, size);
    return 0;
}
