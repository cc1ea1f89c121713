-- luarocks make rockspec/ctrlua-0.1.0-1.rockspec
-- Builds the same ctr.core module (and the ctrlua host) with the project's Makefile, then
-- installs the Lua modules and ctr.core into the rocks tree and the host, its scripts and
-- examples beside it.
package = "ctrlua"
version = "0.1.0-1"
source = { url = "git+file:///dev/null", tag = "v0.1.0" }
description = {
  summary = "A Lua-scriptable, daemonless container toolkit: containerd's ctr run path in C and LuaJIT",
  detailed = [[
ctrlua runs OCI containers from OCI and docker image archives with no daemon: a small C core
(content store, safe layer unpack, overlayfs snapshots, namespaces, cgroups, seccomp) exported
to LuaJIT as ctr.core, a library named after containerd's Go packages, and commands that are
Lua scripts.]],
  license = "Apache-2.0",
}
dependencies = { "lua == 5.1" }
external_dependencies = {
  LIBSECCOMP = { header = "seccomp.h" },
  LIBARCHIVE = { header = "archive.h" },
  CJSON = { header = "cjson/cJSON.h" },
}
build = {
  type = "make",
  build_target = "all",
  build_variables = { CC = "$(CC)" },
  install_target = "install-rock",
  install_variables = {
    PREFIX = "$(PREFIX)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
    BINDIR = "$(BINDIR)",
  },
}
