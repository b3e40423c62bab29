"""radioflow.recipe."""
