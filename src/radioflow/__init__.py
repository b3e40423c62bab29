"""radioflow."""
