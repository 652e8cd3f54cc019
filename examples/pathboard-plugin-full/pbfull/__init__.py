"""pathboard-plugin-full: a model, a dataset and a task, written only against ``pathboard.api``."""
