"""The benchmark runner: sweep specs -> runs, one run's phases, where runs execute, and the run directories.

`spec` expands a YAML spec into `RunConfig`s; `experiment` runs one (teacher -> prune -> retrain -> evaluate);
`executors` (with `worker_pool`, `ray`, `ddp`) decides where; `store`, `locks`, `run_files`, `run_state`,
`supersede` and `failures` keep each run's directory; `plan` is `--dry-run`; `regression` is the proxy check.
"""
