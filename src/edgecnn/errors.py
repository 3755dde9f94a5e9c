"""The errors edgecnn raises for bad input. Each carries one message meant for the user."""


class EdgecnnError(Exception):
    """Base of every user-facing error: the CLI prints the message and exits with status 2."""


class GraphError(EdgecnnError):
    """An invalid graph: unknown kind, bad attribute, shapes that do not fit."""


class ModelFileError(EdgecnnError):
    """A model file that cannot be read: truncated, corrupt, or inconsistent with its graph."""


class ImageError(EdgecnnError):
    """An image that cannot be decoded."""


class MissingDependencyError(EdgecnnError):
    """An optional dependency (an extra) is not installed."""


def require(module: str, extra: str):
    """Import an optional dependency, or fail naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"this needs the Python package {module!r}: pip install 'edgecnn[{extra}]'") from None
