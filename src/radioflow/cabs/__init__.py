"""radioflow.cabs."""
