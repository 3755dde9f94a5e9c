"""Publishing: summaries, model cards, the gallery site and benchmarks."""
