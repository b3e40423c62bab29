"""radioflow.run."""
