-- pipeline-matrix: the same test over several values of an environment variable
--
-- ctrlua pipeline.lua --jobs 3 examples/pipeline-matrix.lua
-- One step per combination, named test[GREETING=hello] ...; a matrix key `image` would pick
-- the image of each variant instead of setting a variable.
return {
  name = "matrix",
  image = "ctrlua.test/busybox:latest",
  steps = {
    { name = "test", matrix = { GREETING = { "hello", "bonjour", "hallo" } }, run = [[
        out=$(echo "$GREETING world")
        test "$out" = "$GREETING world" && echo "ok: $out"
      ]] },
    { name = "report", needs = { "test" }, run = "echo all greetings passed" },
  },
}
