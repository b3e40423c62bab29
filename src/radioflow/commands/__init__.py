"""CLI command groups, one module per area; each has a ``register(app)`` that radioflow.cli calls."""
