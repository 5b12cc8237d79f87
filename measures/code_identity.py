"""What identifies the code that produced a measure's value, so that values made by other code are never reused.

The results store keys each value by the measure's ``version`` (``code_version``): its declared version
plus a hash of everything its value can depend on besides its inputs and parameters:

* the measure function's source, and the code of every module it uses, transitively: a module it
  imports (or a function or class it imports from one), then what that module uses, and so on. A module
  counts as *code* when it belongs to pgdl-bench (``measures``, ``task_loaders``, ``benchmark``) or lies
  outside the interpreter's standard library and site-packages (a plugin's own helper module next to it, a
  package installed in editable mode). Code is hashed as its syntax tree without docstrings, so a comment,
  a docstring or a blank line changes nothing, and any other edit changes the hash;
* the name and version of every installed third-party distribution reached on that walk (a module in
  site-packages: numpy, scipy, tensorflow for a submission, a plugin installed from a wheel), and always
  those of torch, numpy, scipy and scikit-learn, which compute every forward pass and statistic;
* the code on the path from task files to the measure: every module of ``task_loaders`` (the format
  readers, the layer converters, the architectures) and the view (``measures.model_view``), plus
  ``PIPELINE_EXTRA``, which the runner extends with its own view-building functions.

A package reached on the walk contributes its ``__init__`` module's code and what that uses, but not its
submodules merely because they are attributes of the package (``measures`` holds every family as an
attribute; a measure that uses ``measures.measure`` does not depend on every other measure).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import linecache
import sys
import sysconfig
import types
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .plugins import distribution_of
from .registry import Measure

# The project's own packages: their modules are always hashed as code, wherever they are installed.
PROJECT_PACKAGES = ("measures", "task_loaders", "benchmark")
# Distributions whose versions are part of every key: they compute the forward passes and statistics.
CORE_DISTRIBUTIONS = ("torch", "numpy", "scipy", "scikit-learn")
# Code on the path from task files to a measure, beside every ``task_loaders`` module: the view.
PIPELINE_MODULES = ["measures.model_view"]
# Functions outside those modules on that path (``benchmark.running.runner`` adds its view builders).
PIPELINE_EXTRA: list = []



def source_digest(text: str) -> str:
    """sha256 of Python source as its syntax tree, docstrings dropped: comments and layout do not count.
    Text that does not parse is hashed as it is."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return hashlib.sha256(text.encode()).hexdigest()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


@lru_cache(maxsize=None)
def _installed_roots() -> tuple[str, ...]:
    """Folders of the standard library and of installed distributions (site-packages)."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    return tuple(sorted(str(Path(r).resolve()) + "/" for r in roots if r))


@lru_cache(maxsize=None)
def _distributions_of_packages() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@lru_cache(maxsize=None)
def _distribution_version(name: str) -> str:
    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return f"{name} (not installed)"


def _module_file(name: str) -> str | None:
    """The file of module ``name``, imported or not (``find_spec`` of a top-level name imports nothing)."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None
    return spec.origin if spec is not None and spec.has_location else None


def classify(name: str) -> str:
    kind = _classify_top(name.split(".")[0])
    if kind == "missing" and name in sys.modules:
        return "code"
    return kind


@lru_cache(maxsize=None)
def _classify_top(top: str) -> str:
    """``"code"`` (hashed), ``"stdlib"`` (ignored), ``"missing"`` or ``"distribution:<name version>"``
    (its version counts) for the modules of top-level package ``top``; "missing" for a namespace package or a
    module made at run time (code when imported, else nothing to hash)."""
    if top in PROJECT_PACKAGES:
        return "code"
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return "stdlib"
    file = _module_file(top)
    if file is None:
        return "missing"
    if not str(Path(file).resolve()).startswith(_installed_roots()):
        return "code"  # a plugin's helper, an editable install, a script's folder
    dists = _distributions_of_packages().get(top)
    return "distribution:" + "; ".join(_distribution_version(d) for d in sorted(set(dists or [top])))


def _imported_names(module: types.ModuleType) -> list[str]:
    """Modules named by the import statements of ``module``'s source, those inside functions included
    (``from helper import FACTOR`` binds a number, invisible to ``vars``)."""
    file = getattr(module, "__file__", None)
    try:
        tree = ast.parse(Path(file).read_text(encoding="utf-8", errors="replace") if file and file.endswith(".py")
                         else inspect.getsource(module))
    except (OSError, TypeError, SyntaxError, ValueError):
        return []
    package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] if node.level > 1 else parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names.append(target)
            names += [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in sys.modules]
    return [n for n in names if n]


def _used_modules(module: types.ModuleType) -> list[str]:
    """Names of the modules ``module`` uses: modules bound in it, the modules of functions and classes bound
    in it, and those its import statements name; a package's own submodules are left out unless its
    source imports them by name (see the module docstring)."""
    own_prefix = module.__name__ + "." if hasattr(module, "__path__") else None
    used = []
    for value in list(vars(module).values()):
        if isinstance(value, types.ModuleType):
            if own_prefix and value.__name__.startswith(own_prefix):
                continue
            name = value.__name__
        elif isinstance(value, (types.FunctionType, type)):
            name = getattr(value, "__module__", None)
        else:
            continue
        if isinstance(name, str) and name != module.__name__:
            used.append(name)
    if own_prefix is None:
        used += _imported_names(module)
    return used


def dependencies(module_name: str) -> tuple[list[types.ModuleType], set[str]]:
    """The code modules reached from ``module_name`` (itself first) and the distributions reached
    ("name version"), walking ``_used_modules`` transitively."""
    code: dict[str, types.ModuleType] = {}
    dists: set[str] = set()
    seen: set[str] = set()
    todo = [module_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        kind = classify(name)
        if kind in ("stdlib", "missing"):
            continue
        if kind.startswith("distribution:"):
            dists.add(kind.split(":", 1)[1])
            continue
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)  # our code or a helper, imported lazily by the measure
            except Exception:
                continue
        code[name] = module
        stamp = _stamp(module)
        if stamp not in _USES:
            _USES[stamp] = _used_modules(module)
        todo += [n for n in _USES[stamp] if n not in seen]
    own = code.pop(module_name, None)
    return ([own] if own else []) + [code[n] for n in sorted(code)], dists


_DIGESTS: dict[tuple, str] = {}  # (module name, file, mtime, size) -> digest of its code
_USES: dict[tuple, list[str]] = {}  # the same key -> the modules it uses


def _stamp(module: types.ModuleType) -> tuple:
    """What says a module's file is unchanged: its name, path, modification time and size (and its identity)."""
    file = getattr(module, "__file__", None)
    try:
        st = Path(file).stat() if file else None
    except OSError:
        st = None
    return (module.__name__, id(module), file, st.st_mtime_ns if st else None, st.st_size if st else None)


def _module_digest(module: types.ModuleType) -> str:
    stamp = _stamp(module)
    if stamp not in _DIGESTS:
        _DIGESTS[stamp] = _compute_module_digest(module)
    return _DIGESTS[stamp]


def _compute_module_digest(module: types.ModuleType) -> str:
    """The digest of a module's file as it is on disk now (``linecache`` may hold an older text)."""
    file = getattr(module, "__file__", None)
    if file and file.endswith(".py"):
        try:
            return source_digest(Path(file).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            pass
    try:
        return source_digest(inspect.getsource(module))
    except (OSError, TypeError):
        try:
            return hashlib.sha256(Path(file).read_bytes()).hexdigest() if file else "no source"
        except OSError:
            return "unreadable"


def _function_digest(fn) -> str:
    fn = inspect.unwrap(fn)
    file = getattr(getattr(fn, "__code__", None), "co_filename", None)
    if file:
        linecache.checkcache(file)
    try:
        return source_digest(inspect.getsource(fn))
    except (OSError, TypeError):  # defined at the prompt or in C: its byte code and constants
        code = getattr(fn, "__code__", None)
        data = code.co_code + repr(code.co_consts).encode() if code is not None else repr(fn).encode()
        return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=None)
def _loader_modules() -> tuple[str, ...]:
    import pkgutil

    import task_loaders

    return tuple(sorted({m.name for m in pkgutil.walk_packages(task_loaders.__path__, "task_loaders.")}
                        | {"task_loaders"}))


def pipeline_digest() -> str:
    """Hash of the code on the path from task files to a measure: every ``task_loaders`` module, the view
    (``PIPELINE_MODULES``) and ``PIPELINE_EXTRA``'s functions."""
    h = hashlib.sha256()
    for name in list(_loader_modules()) + list(PIPELINE_MODULES):
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # a loader module that cannot import cannot have computed anything either
            h.update(f"{name}: {type(exc).__name__}".encode())
            continue
        h.update(f"{name}:{_module_digest(module)}\n".encode())
    for fn in PIPELINE_EXTRA:
        h.update(f"{fn.__module__}.{fn.__qualname__}:{_function_digest(fn)}\n".encode())
    return h.hexdigest()


def identity(entry: Measure) -> dict:
    """Everything a measure's value depends on besides its inputs, parameters and repeat, as a dict of
    digests and versions: what ``code_hash`` hashes and ``pgdl-bench store`` shows."""
    fn = inspect.unwrap(entry.fn)
    modules, dists = dependencies(getattr(fn, "__module__", "") or "")
    dists |= {_distribution_version(d) for d in CORE_DISTRIBUTIONS}
    return {
        "function": _function_digest(fn),
        "modules": {m.__name__: _module_digest(m) for m in modules},
        "distributions": sorted(dists),
        "pipeline": pipeline_digest(),
        "package": distribution_of(entry.name),
    }


def code_hash(entry: Measure) -> str:
    """A short hash of ``identity(entry)``; files are re-read only when their time or size changed."""
    return hashlib.sha256(repr(sorted(identity(entry).items())).encode()).hexdigest()[:12]


def forget() -> None:
    """Drop the cached hashes (a test or a long session that edits code in place)."""
    _DIGESTS.clear()
    _USES.clear()
    _loader_modules.cache_clear()
    _classify_top.cache_clear()


def code_version(entry: Measure) -> str:
    """The store's ``version`` of a measure: its declared version plus its code hash."""
    return f"{entry.version}+{code_hash(entry)}"
