"""The package's imports run one way: every module imports only from its own
layer or the layers below it, no two modules import each other (directly or
in a ring, function-level imports included), and nothing imports the corpus
preparations (``data_prep``): lobes never depend on data preparation."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "speechbrain_ext"
# bottom first; the package's own __init__ sits above every layer
LAYERS = ["io", "models", "interop", "pretraining", "training", "downstream", "analysis", "reproduce"]


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """Every module ``path`` imports, anywhere in the file (absolute names)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            # `from speechbrain_ext.io import checkpoints` imports a module
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def package_graph():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in imports_of(path) if m in modules and m != name}
    return modules, graph


def layer(module):
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 else len(LAYERS)


def test_every_module_belongs_to_a_layer():
    modules, _ = package_graph()
    stray = [m for m in modules if m != "speechbrain_ext" and m.split(".")[1] not in LAYERS]
    assert not stray, f"modules outside the layers {LAYERS}: {stray}"


def test_imports_run_downwards():
    _, graph = package_graph()
    upward = [f"{m} ({LAYERS[layer(m)] if layer(m) < len(LAYERS) else 'package'}) imports {d} "
              f"({LAYERS[layer(d)]})" for m, deps in graph.items() for d in deps if layer(d) > layer(m)]
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycle():
    _, graph = package_graph()
    # Tarjan's strongly connected components: any of size > 1 is a cycle
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_the_package_never_imports_data_prep():
    offenders = [module_name(p) for p in PACKAGE.rglob("*.py")
                 if any(m == "data_prep" or m.startswith("data_prep.") for m in imports_of(p))]
    assert not offenders, f"these modules import data_prep: {offenders}"


def test_the_checks_see_a_cycle_and_a_data_prep_import(tmp_path, monkeypatch):
    """The walker finds function-level imports (where the old cycles hid)."""
    module = tmp_path / "speechbrain_ext" / "models" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from speechbrain_ext.interop import hf\n    import data_prep.common\n")
    monkeypatch.setattr("test_layering.PACKAGE", tmp_path / "speechbrain_ext")
    assert imports_of(module) >= {"speechbrain_ext.interop", "speechbrain_ext.interop.hf", "data_prep.common"}
