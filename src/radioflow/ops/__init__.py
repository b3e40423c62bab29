"""radioflow.ops."""
