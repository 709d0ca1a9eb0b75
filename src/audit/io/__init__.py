"""Model adapters and dataset adapters: one small Protocol each."""
