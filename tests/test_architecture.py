"""The import graph of ``pathboard/``: built-ins on the public surface, no cycle, layers that point one way.

Read from the source with ``ast`` (nothing is imported), so a test fails on the import line that breaks a rule.
"""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


PACKAGE = REPO / "pathboard"


#: the role folders of core/, lowest first: a module may import its own layer and the ones below it
LAYERS = [{"pathboard.core.errors", "pathboard.core.paths", "pathboard.core.timing"},
          {"pathboard.core.media", "pathboard.core.science"},
          {"pathboard.core.interfaces"},
          {"pathboard.core.embedding", "pathboard.core.store"},
          {"pathboard.core.engine"}]


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    return name.removesuffix(".__init__")


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every pathboard module ``path`` imports, at any depth of the file (a function's lazy
    import counts: it is an edge of the graph all the same)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("pathboard")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pathboard"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.append((node.lineno, full if full in MODULES else node.module))
    return out


def resolved(name: str) -> str:
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def graph() -> dict[str, set[str]]:
    return {name: {resolved(m) for _, m in imports(path)} - {name} for name, path in MODULES.items()}


def plugin_offences(plugins: Path) -> list[str]:
    """Every import of a module under ``plugins`` that is neither ``pathboard.api`` nor a private helper
    (``_name``) of its own folder: a plugin must do what a third party can, with nothing else."""
    offences = []
    for path in sorted(plugins.rglob("*.py")):
        family = "pathboard.plugins." + ".".join(path.parent.relative_to(plugins).parts)  # pathboard.plugins.tasks
        for line, module in imports(path):
            private = module.startswith(family + "._") and module.count(".") == family.count(".") + 1
            if module != "pathboard.api" and not private:
                offences.append(f"{path.relative_to(plugins.parent)}:{line} imports {module}")
    return offences


def cycles_of(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``edges`` (module -> modules it imports): its strongly connected components."""
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def layer(name: str) -> int | None:
    for i, members in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return i
    return None


def test_built_in_plugins_import_only_the_public_api_and_their_own_private_helpers():
    offences = plugin_offences(PACKAGE / "plugins")
    assert not offences, "\n".join(offences)


def test_the_plugin_rule_catches_a_core_import_and_a_plugin_importing_a_plugin(tmp_path):
    tasks = tmp_path / "plugins" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "bad.py").write_text(
        "from pathboard.api import Task\nfrom pathboard.plugins.tasks._shared import helper\n"
        "from pathboard.core.science.metrics import Metric\nfrom pathboard.plugins.tasks.zeroshot import ZeroShot\n"
        "from pathboard.plugins.models._kep_modules import KEPCTP\nimport pathboard.core.engine.plugins\n")
    assert plugin_offences(tmp_path / "plugins") == [
        "plugins/tasks/bad.py:3 imports pathboard.core.science.metrics",
        "plugins/tasks/bad.py:4 imports pathboard.plugins.tasks.zeroshot",
        "plugins/tasks/bad.py:5 imports pathboard.plugins.models._kep_modules",
        "plugins/tasks/bad.py:6 imports pathboard.core.engine.plugins"]


def test_there_is_no_import_cycle_in_pathboard():
    assert cycles_of({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check can fail
    assert not cycles_of(graph()), cycles_of(graph())


def test_core_layers_point_down_science_and_media_never_reach_the_engine():
    offences = []
    for name, path in MODULES.items():
        mine = layer(name)
        if mine is None:
            continue
        for line, module in imports(path):
            theirs = layer(resolved(module))
            if theirs is None and resolved(module).startswith("pathboard.") and resolved(module) != "pathboard":
                offences.append(f"{name}:{line} imports {module}, outside core/")
            elif theirs is not None and theirs > mine:
                offences.append(f"{name}:{line} imports {module}, a higher layer")
    assert not offences, "\n".join(offences)


def test_every_core_module_sits_in_a_role_folder():
    core = PACKAGE / "core"
    loose = sorted(p.name for p in core.glob("*.py") if p.name not in {"__init__.py", "errors.py", "paths.py", "timing.py"})
    assert not loose, f"modules outside the role folders of core/: {loose}"
    assert {p.name for p in core.iterdir() if p.is_dir() and p.name != "__pycache__"} == \
        {"interfaces", "engine", "embedding", "store", "science", "media"}
