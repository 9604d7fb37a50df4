"""The accepted resources: their models and the admission rules that guard the store."""
