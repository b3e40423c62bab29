"""radioflow.backends."""
