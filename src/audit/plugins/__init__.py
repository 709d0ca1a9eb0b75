"""Built-in plugins, one per FUTURE-AI principle, registered under ``audit.plugins``."""
