"""The engine: workflow model, DAG, hashing and state, rebuilder, scheduler,
executors and the CLI. Modules are imported where they are needed, so that
``flow --version`` stays fast."""
