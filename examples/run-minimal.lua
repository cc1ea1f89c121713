-- run-minimal: the whole `ctr run` path in a few lines of the public API
--
-- ctrlua [--root R --state S] examples/run-minimal.lua IMAGE ID [COMMAND [ARG...]]
-- As containerd's Go client: client, image, container (snapshot + spec), task, start, wait,
-- delete.  Exits with the container's exit code.
local ctr = require("ctr")
local oci, containers, cio = ctr.oci, ctr.containers, ctr.cio

local function must(v, err)
  if v == nil then
    io.stderr:write("ctrlua: ", tostring(err), "\n")
    os.exit(125)
  end
  return v
end

local ref, id = ...
if not ref or not id then must(nil, "usage: run-minimal.lua IMAGE ID [COMMAND [ARG...]]") end
local args = { select(3, ...) }

local client = must(ctr.client())
local image = must(client:get_image(ref))
local manifest, config = ctr.images.manifest(client, image)
must(manifest, config)
image.config = config

local spec_opts = { oci.with_image_config(image) }
if #args > 0 then spec_opts[#spec_opts + 1] = oci.with_process_args(unpack(args)) end
local container = must(client:new_container(id,
  containers.with_new_snapshot(id, image),
  containers.with_new_spec(unpack(spec_opts))))

local task, err = container:new_task(cio.stdio())
if not task then
  container:delete({ snapshot_cleanup = true })
  must(nil, err)
end
must(task:start())
local code = must(task:wait({ forward = true }))
task:delete()
must(container:delete({ snapshot_cleanup = true }))
io.stdout:flush()
os.exit(code)
