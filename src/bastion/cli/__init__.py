"""The kubectl-shaped command line."""
