"""Naming strategies: metadata, weights, tensors, structure, reference matching, map."""
