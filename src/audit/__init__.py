"""future-audit: audit a trained medical AI model against the FUTURE-AI principles."""

__version__ = "0.1.0"
__all__ = ["__version__"]
