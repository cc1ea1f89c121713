-- pipeline-build-test: build once, then test and lint in parallel over a shared workspace
--
-- ctrlua pipeline.lua --jobs 2 --junit report.xml examples/pipeline-build-test.lua
-- "build" writes into /workspace; "test" and "lint" need it, run at the same time (with
-- --jobs 2) and read what it wrote.
return {
  name = "build-test",
  image = "ctrlua.test/busybox:latest",
  env = { CI = "true" },
  steps = {
    { name = "build", run = [[
        mkdir -p /workspace/out
        printf 'hello from the build\n' > /workspace/out/artifact.txt
        echo "built $(wc -c < /workspace/out/artifact.txt) bytes"
      ]] },
    { name = "test", needs = { "build" }, timeout = 60, run = [[
        grep -q 'hello from the build' /workspace/out/artifact.txt
        echo "test passed (CI=$CI)"
      ]] },
    { name = "lint", needs = { "build" }, timeout = 60,
      run = { "sh", "-c", "test -s /workspace/out/artifact.txt && echo lint clean" } },
  },
}
