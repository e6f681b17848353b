"""Naming strategies: each turns some evidence in a model into node names."""
