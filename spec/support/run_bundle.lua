-- The runner process of spec/support/bundle.lua: run as a script (by luajit, or by the
-- sanitizer build of ctrlua under `make asan`, which has ctr.core linked in).
require("support.bundle").main()
