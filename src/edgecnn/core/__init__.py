"""The core: the graph, accounting, the numpy reference, preprocessing, data, labels, IO."""
