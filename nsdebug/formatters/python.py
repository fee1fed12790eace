"""Text for the Python commands (filled as the runtime model grows)."""
