"""The hooks a pathboard plugin implements (models, datasets, tasks, dataset factories, protocol packs).
Built-ins use them too."""
import pluggy

hookspec = pluggy.HookspecMarker("pathboard")
hookimpl = pluggy.HookimplMarker("pathboard")


@hookspec
def register_models(register):
    """Call ``register(spec)`` for each :class:`pathboard.core.interfaces.model.ModelSpec` you provide."""


@hookspec
def register_datasets(register):
    """Call ``register(dataset)`` for each :class:`pathboard.core.interfaces.dataset.Dataset` you provide."""


@hookspec
def register_tasks(register):
    """Call ``register(task)`` for each :class:`pathboard.core.interfaces.task.Task` you provide."""


@hookspec
def register_dataset_factories(register):
    """Call ``register(factory)`` for parameterised datasets: ``factory.id`` is a prefix such as
    ``folder`` and ``factory.build(rest)`` returns the dataset that ``--datasets folder:REST`` names."""


@hookspec
def register_protocols(register):
    """Call ``register(pack)`` for each :class:`pathboard.core.interfaces.protocols.ProtocolPack` you provide:
    one paper's evaluation protocol, which ``pathboard run --protocol ID`` applies (plugin API 5)."""
