"""Training: the torch module built from a graph, and the training loop (torch imported lazily)."""
