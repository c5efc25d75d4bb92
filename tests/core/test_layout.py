"""The layout of core/ (docs/DESIGN.md): rooms, import directions, torch only in core/deep,
QGIS nowhere, and every allowed value from core/options.py."""

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = os.path.join(ROOT, "core")


def core_modules() -> dict:
    """module name -> file, for every module of core/."""
    mods = {}
    for folder, _, files in os.walk(CORE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path[:-3], ROOT).replace(os.sep, ".")
                mods[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return mods


def imports_of(name: str, path: str, mods: dict) -> set:
    """core modules that ``name`` imports (anywhere in the file, lazily or not), and whether torch."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    is_pkg = path.endswith("__init__.py")
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.update(t for t in [target] + [f"{target}.{a.name}" for a in node.names] if t in mods or t == "torch"
                       or t.startswith("torch."))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in mods or a.name.split(".")[0] == "torch")
    return {t for t in out if t != name and not name.startswith(t + ".")}


def test_import_graph_has_no_cycle_and_goes_down():
    mods = core_modules()
    graph = {m: imports_of(m, p, mods) for m, p in mods.items()}
    torch_users = sorted(m for m, deps in graph.items() if any(d.split(".")[0] == "torch" for d in deps))
    assert torch_users and all(m.startswith("core.deep") for m in torch_users), torch_users
    for m, deps in graph.items():
        if m.startswith(("core.run", "core.io", "core.classical", "core.deep")):
            assert "core.pipeline" not in deps, f"{m} imports the dispatcher"
        if m.startswith(("core.io", "core.classical")):
            assert not any(d.startswith(("core.run", "core.deep")) for d in deps), (m, deps)
    core_edges = {m: {d for d in deps if d in mods} for m, deps in graph.items()}
    state = {}

    def visit(m, stack):
        state[m] = 1
        for d in core_edges[m]:
            if d.startswith(m + ".") or m.startswith(d + "."):
                continue  # a package and its own children
            if state.get(d) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(stack + [m, d])}")
            if d not in state:
                visit(d, stack + [m])
        state[m] = 2

    for m in core_edges:
        if m not in state:
            visit(m, [])


_BLOCK = (
    "import sys, importlib\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in {blocked!r}:\n"
    "            raise ImportError('blocked ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "for m in {mods!r}:\n"
    "    importlib.import_module(m)\n"
    "bad = [m for m in sys.modules if m.split('.')[0] in {blocked!r}]\n"
    "assert not bad, bad\n"
    "print('ok')\n")


def _import_all(mods, blocked):
    code = _BLOCK.format(blocked=tuple(blocked), mods=sorted(mods))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")


def test_every_module_outside_core_deep_imports_without_torch():
    _import_all([m for m in core_modules() if not m.startswith("core.deep")], ("torch",))


def test_every_core_module_imports_without_qgis_and_qt():
    _import_all(list(core_modules()), ("qgis", "PyQt5", "PyQt6", "sip"))


def test_cli_choices_come_from_core_options():
    from core import options
    from core.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    choices = {(cmd, a.dest): tuple(a.choices) for cmd, p in sub.choices.items() for a in p._actions if a.choices}
    assert choices == {
        ("synth", "family"): options.FAMILIES, ("synth", "noise"): options.NOISE_KINDS,
        ("extract", "method"): options.EXTRACT_METHODS,
        ("unmix", "method"): options.METHODS, ("unmix", "device"): options.DEVICES,
        ("unmix", "quality"): options.QUALITIES,
        ("train", "stage"): ("all",) + options.STAGES, ("train", "device"): options.DEVICES,
        ("train", "quality"): options.QUALITIES,
        ("apply", "device"): options.DEVICES,
        ("batch", "method"): options.METHODS, ("batch", "device"): options.DEVICES,
        ("batch", "quality"): options.QUALITIES,
    }
