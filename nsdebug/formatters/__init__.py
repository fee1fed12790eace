"""Text formatters, one module per command family; each yields lines for a result type."""
