"""The two adapters most model plugins reduce to."""
from pathboard.adapters.hf_clip import HFCLIPSpec
from pathboard.adapters.openclip import OpenCLIPSpec

__all__ = ["HFCLIPSpec", "OpenCLIPSpec"]
