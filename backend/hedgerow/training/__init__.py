"""The training worker, model registry, evaluation and model cards."""
