"""CLI command groups, one module per area; each registers itself on radioflow.cli.app."""
