"""Configuration, context, prediction cache, runner, results, gates and provenance."""
