"""pathboard: compare pathology vision-language models on pathology datasets."""
from importlib.metadata import PackageNotFoundError, version

from pathboard.core.interfaces.hookspecs import hookimpl

try:
    __version__ = version("pathboard")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["hookimpl", "__version__"]
