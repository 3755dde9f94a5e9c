"""What a user names as a model (a file, a pretrained model, a zoo name) becomes a Graph.

It sits above the formats, the zoo and the pretrained registry, which it all reads.
"""

from __future__ import annotations

import os

from .. import zoo
from ..core.graph import Graph
from ..errors import EdgecnnError, ModelFileError
from ..formats.modelfile import load, looks_like_path
from . import pretrained


def resolve(spec: str | os.PathLike | Graph, weights: bool = True, seed: int = 0) -> Graph:
    """A model from a Graph, a model file path, a pretrained model's name (fetched and
    cached), or a zoo name / ELL architecture string.

    Zoo models come with He-initialized weights (``seed``) when ``weights`` is set.
    """
    if isinstance(spec, Graph):
        return spec
    spec = os.fspath(spec)
    if os.path.exists(spec):
        if os.path.isdir(spec):
            raise EdgecnnError(f"{spec}: is a directory, not a model file; give the .safetensors "
                               "file inside it")
        return load(spec)
    if looks_like_path(spec):
        raise ModelFileError(f"{spec}: no such model file; check the path, or give a zoo "
                             "name (`edgecnn list`)")
    if spec in pretrained.registry():
        return load(pretrained.fetch(spec))

    g = zoo.get(spec)
    if weights:
        g.init_weights(seed)
        g.meta.setdefault("weights", f"untrained: He-initialized (seed {seed})")
    return g
