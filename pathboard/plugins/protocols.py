"""pathboard's protocol packs: each paper's evaluation protocol, one JSON file each in ``pathboard/protocols``
(see :class:`pathboard.api.ProtocolPack`), registered as a third party registers its own."""
from pathboard.api import ProtocolPack, hookimpl, packaged_protocols


@hookimpl
def register_protocols(register):
    for path in sorted(packaged_protocols().glob("*.json")):
        register(ProtocolPack.load(path))
