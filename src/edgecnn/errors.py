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


# What malformed input raises from deep inside a parser (a bad offset, a missing key, a
# field of the wrong type, a zero where a divisor goes). Readers of untrusted files turn these
# into one error naming the file: see :func:`malformed`.
MALFORMED = (ValueError, KeyError, IndexError, TypeError, AttributeError, ZeroDivisionError,
             OverflowError, RecursionError, UnicodeDecodeError, EOFError)


def malformed(path, what: str, e: BaseException) -> str:
    """The message for a file whose parsing failed with ``e`` (one of MALFORMED)."""
    detail = (str(e).strip().splitlines() or [""])[0][:200]
    return (f"{path}: malformed {what} ({type(e).__name__}: {detail}); the file is corrupt or "
            "was written by a tool edgecnn does not understand: re-export or re-download it")
