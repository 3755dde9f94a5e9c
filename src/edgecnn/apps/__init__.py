"""Applications: resolving a model name, pretrained models, classify, evaluate, retarget, serve."""
