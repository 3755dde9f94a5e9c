"""Model formats: the native model file, ONNX export, and importers of other formats."""
