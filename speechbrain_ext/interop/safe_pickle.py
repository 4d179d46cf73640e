"""Read ``torch.save`` files from elsewhere (fairseq ``.pt`` checkpoints)
as plain data, without running anything from them.

A pickle is a program: ``torch.load(..., weights_only=False)`` calls any
function a file names (``os.system`` included). ``load_plain`` instead

1. lists the globals that the file's pickles name, reading the opcodes
   without unpickling (``pickled_globals``);
2. refuses the file (``RefusedGlobalError``) if one of them is neither
   torch's own (tensors, storages), a plain-data name of ``_plain_globals``
   (``argparse.Namespace``, ``collections.defaultdict``, ``typing`` names,
   numpy scalars...), nor under a *foreign* package (``omegaconf``,
   ``fairseq``);
3. unpickles it with torch's restricted ``weights_only`` unpickler, the
   allowed names mapped to stand-ins defined here: a foreign class becomes a
   ``Foreign`` subclass that only stores what the pickle gives it, so
   neither omegaconf nor fairseq is imported, let alone run;
4. turns the stand-ins into plain data (``to_plain``): an omegaconf
   ``DictConfig`` / ``ListConfig`` (pickled as their ``__dict__``:
   ``_content`` holding nodes whose ``_val`` is the value, plus
   ``_metadata`` and ``_parent``) becomes a dict / list of plain values, an
   enum member (``Choices("layer_norm")``) its value, any other foreign
   object the dict of its pickled state.

Step 3 holds on its own: a global that step 1 missed is not allowlisted, so
torch refuses it too.

Example
-------
>>> import argparse, tempfile, torch
>>> path = tempfile.mkdtemp() + "/ckpt.pt"
>>> torch.save({"args": argparse.Namespace(lr=[0.1]), "w": torch.ones(2)}, path)
>>> ckpt = load_plain(path)
>>> ckpt["args"].lr, ckpt["w"].tolist()
([0.1], [1.0, 1.0])
"""
import argparse
import io
import pickle
import pickletools
import re
import struct
import threading
import zipfile
from pathlib import Path

import _compat_pickle
import torch

# Protocol-2 pickles name Python 2 modules (``__builtin__.long``,
# ``commands.Popen``): pickle maps them back with _compat_pickle's tables,
# torch's unpickler with its own (smaller) copy.
try:
    from torch._utils import IMPORT_MAPPING as _TORCH_IMPORT_MAPPING, NAME_MAPPING as _TORCH_NAME_MAPPING
except ImportError:  # pragma: no cover - another torch
    _TORCH_IMPORT_MAPPING, _TORCH_NAME_MAPPING = _compat_pickle.IMPORT_MAPPING, _compat_pickle.NAME_MAPPING

# Packages whose classes are read as inert stand-ins (never imported).
FOREIGN_PACKAGES = ("omegaconf", "fairseq")

# Globals torch's weights_only unpickler allows by itself (besides torch.*).
_TORCH_ALLOWS = {"collections.OrderedDict", "collections.Counter", "_codecs.encode",
                 "builtins.bytearray", "builtins.set", "builtins.complex"}

_LOAD_LOCK = threading.Lock()


class RefusedGlobalError(pickle.UnpicklingError):
    """The file names a global that is not plain data; nothing was unpickled."""

    def __init__(self, path, names):
        self.path, self.names = path, sorted(names)
        super().__init__(f"{path}: refusing to unpickle, it asks for {', '.join(self.names)} "
                         "(only tensors, plain data, omegaconf configs and fairseq objects are read; "
                         "nothing from the file was run)")


class TypeRef:
    """A type a pickle names as a value (omegaconf's ``_metadata.ref_type``,
    ``typing.Any``, ``Dict[str, int]``...): only its name is kept."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


class _ForeignMeta(type):
    # pickle's REDUCE calls the class. Enum members pickle as
    # ``Cls(value)`` (fairseq's ChoiceEnum values too): read as the value.
    def __call__(cls, *args):
        if len(args) == 1:
            return args[0]
        return cls.__new__(cls, *args)


class Foreign(metaclass=_ForeignMeta):
    """Base of the stand-ins for foreign classes. An instance holds the
    ``args`` of its ``__new__`` (pickle's NEWOBJ) and the ``state`` that
    pickle's BUILD hands to ``__setstate__``; it does nothing else."""

    __slots__ = ("args", "state")
    name = "?"  # "module.qualname" of the class it stands for

    def __new__(cls, *args):
        obj = object.__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<stand-in {self.name}>"


def _stand_in(full_name):
    module, _, qualname = full_name.rpartition(".")
    return _ForeignMeta(qualname, (Foreign,), {"__slots__": (), "__module__": module,
                                               "__qualname__": qualname, "name": full_name})


def _plain_dict(*args):
    # collections.defaultdict(factory): a plain dict (its factory is not kept)
    return {}


def _subscript(origin, args):
    # operator.getitem, as ``typing.List[int]`` pickles; only on type names
    items = args if isinstance(args, tuple) else (args,)
    if not isinstance(origin, TypeRef) or not all(isinstance(a, (TypeRef, type)) for a in items):
        raise pickle.UnpicklingError(f"operator.getitem is only read on typing names, got {origin!r}")
    return TypeRef(f"{origin.name}[{', '.join(repr(a) for a in items)}]")


def _type_of(value):
    # builtins.type(None) is how pickle writes NoneType (in ``Optional[int]``)
    if value is not None:
        raise pickle.UnpicklingError(f"builtins.type is only read on None, got {type(value).__name__}")
    return TypeRef("NoneType")


def _path(*parts):
    # pathlib paths (omegaconf's PathNode) as strings
    if not all(isinstance(p, str) for p in parts):
        raise pickle.UnpicklingError("a pickled path holds something other than strings")
    return "/".join(parts)


class _NumpyDType:
    """``numpy.dtype(spec, align, copy)`` + BUILD state (``state[1]`` is the
    byte order): only what ``_numpy_scalar`` needs to decode bytes."""

    def __init__(self, spec, *args):
        self.spec, self.order = spec, "="

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "=", "|"):
            self.order = state[1]


_NUMPY_KINDS = {"b1": "?", "i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I",
                "i8": "q", "u8": "Q", "f2": "e", "f4": "f", "f8": "d", "c8": "ff", "c16": "dd"}


def _numpy_scalar(dtype, data=None):
    # numpy.core.multiarray.scalar(dtype, raw bytes): e.g. fairseq's np.float64 losses
    if not isinstance(dtype, _NumpyDType):
        raise pickle.UnpicklingError("numpy scalar without a dtype")
    if dtype.spec == "O":  # an object scalar pickles the (already read) object itself
        return data
    kind = _NUMPY_KINDS.get(dtype.spec)
    if kind is None or not isinstance(data, bytes):
        raise pickle.UnpicklingError(f"numpy scalars of dtype {dtype.spec!r} are not read")
    order = {"<": "<", ">": ">", "|": "<"}.get(dtype.order, "=")
    values = struct.unpack(order + kind, data)
    return complex(*values) if len(values) == 2 else values[0]


def _plain_globals():
    """full name -> the object that stands for it when unpickling."""
    table = {"argparse.Namespace": argparse.Namespace,  # fairseq's legacy ``args``: attributes only
             "builtins.frozenset": frozenset,
             "collections.defaultdict": _plain_dict,
             "_operator.getitem": _subscript, "operator.getitem": _subscript,
             "builtins.type": _type_of,
             "numpy.dtype": _NumpyDType,
             "numpy.core.multiarray.scalar": _numpy_scalar, "numpy._core.multiarray.scalar": _numpy_scalar}
    for name in ("PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath", "Path"):
        table[f"pathlib.{name}"] = _path
    # types named as values (omegaconf metadata: object_type=dict, element_type=int)
    for name in ("dict", "list", "tuple", "str", "int", "float", "bool", "bytes", "object"):
        table[f"builtins.{name}"] = TypeRef(name)
    return table


def _mapped_name(module, name, name_mapping, import_mapping):
    if (module, name) in name_mapping:
        module, name = name_mapping[(module, name)]
    elif module in import_mapping:
        module = import_mapping[module]
    return f"{module}.{name}"


def _globals_in(stream, found):
    for opcode, arg, _ in pickletools.genops(stream):
        if opcode.name in ("GLOBAL", "INST"):
            module, name = arg.split(" ", 1)
            python_name = _mapped_name(module, name, _compat_pickle.NAME_MAPPING, _compat_pickle.IMPORT_MAPPING)
            found[python_name] = _mapped_name(module, name, _TORCH_NAME_MAPPING, _TORCH_IMPORT_MAPPING)
        elif opcode.name == "STACK_GLOBAL":  # not read by torch's unpickler either
            found["<STACK_GLOBAL of pickle protocol 4+>"] = None


def pickled_globals(path):
    """The globals that the pickles of the ``torch.save`` file at ``path``
    name (zip format: ``data.pkl``; legacy format: its leading pickles),
    read without unpickling anything. Returns a dict: ``"module.name"`` as
    Python's pickle would import it -> the name torch's unpickler looks up
    (they differ for a few Python 2 names).

    Raises ``pickle.UnpicklingError`` if the file is not made of pickles.
    """
    found = {}
    with open(path, "rb") as f:
        zipped = f.read(4) == b"PK\x03\x04"
        f.seek(0)
        try:
            if zipped:
                with zipfile.ZipFile(f) as archive:
                    for member in archive.namelist():
                        if member == "data.pkl" or member.endswith("/data.pkl"):
                            _globals_in(io.BytesIO(archive.read(member)), found)
            else:
                # magic number, protocol, sys info, the object, storage keys; then raw bytes
                for _ in range(5):
                    _globals_in(f, found)
        except (ValueError, EOFError, OSError, zipfile.BadZipFile) as err:
            raise pickle.UnpicklingError(f"{path}: not a torch.save file ({err})") from err
    return found


def _is_foreign(full_name):
    return full_name.split(".", 1)[0] in FOREIGN_PACKAGES and re.fullmatch(r"[\w.]+", full_name)


def stand_ins_for(names):
    """``(allowed, refused)`` for the ``names`` of ``pickled_globals``: the
    stand-ins to unpickle with (a dict: the name torch looks up -> object;
    names torch allows itself are left out) and the set of refused names."""
    table = _plain_globals()
    allowed, refused = {}, set()
    for full_name, torch_name in names.items():
        if full_name in table:
            stand_in = table[full_name]
        elif _is_foreign(full_name):
            stand_in = _stand_in(full_name)
        elif re.fullmatch(r"typing\.\w+", full_name):
            stand_in = TypeRef(full_name)
        else:
            if not (full_name in _TORCH_ALLOWS or full_name.startswith("torch.")):
                refused.add(full_name)  # torch.* is left to torch's own allowlist
            continue
        allowed[torch_name] = stand_in
    return allowed, refused


def _weights_only_reason(err):
    # torch wraps the reason in advice (weights_only=False, add_safe_globals)
    # that does not apply here: keep the reason only
    text = str(err).replace("WeightsUnpickler error:", "")
    reasons = [line.split("Please use")[0].strip() for line in text.splitlines()
               if not re.search(r"weights_only|Weights only load failed", line)]
    return " ".join(r for r in reasons if r) or text.strip()


def load_plain(path):
    """Unpickle the ``torch.save`` file at ``path`` without running code
    from it (see the module docstring); tensors are loaded on the CPU.
    Returns the object with omegaconf configs as dicts / lists and other
    foreign objects as plain data (``to_plain``).

    Raises ``RefusedGlobalError`` for a file that names any other global,
    ``pickle.UnpicklingError`` for one that cannot be read.
    """
    path = Path(path)
    allowed, refused = stand_ins_for(pickled_globals(path))
    if refused:
        raise RefusedGlobalError(path, refused)
    try:
        # the allowlist is process-wide: one load at a time, so that one
        # load's exit does not remove the names another one is using
        with _LOAD_LOCK, torch.serialization.safe_globals([(obj, name) for name, obj in allowed.items()]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise pickle.UnpicklingError(f"{path}: {_weights_only_reason(err)}") from None
    except (RuntimeError, ValueError, TypeError, AttributeError, KeyError, EOFError) as err:
        raise pickle.UnpicklingError(f"{path}: cannot be read ({type(err).__name__}: {err})") from err
    try:
        return to_plain(obj)
    except RecursionError:
        raise pickle.UnpicklingError(f"{path}: nested too deeply to read") from None


def to_plain(obj, _memo=None):
    """``obj`` with the stand-ins of ``load_plain`` replaced by plain data:
    omegaconf containers -> dict / list, omegaconf nodes -> their value,
    other ``Foreign`` objects -> the dict of their state (or the list of
    their arguments), type names -> str. dicts, lists and ``Namespace``s are
    converted in place (their type and identity are kept); tensors and
    other values are returned as they are."""
    memo = {} if _memo is None else _memo
    key = id(obj)
    if key in memo:
        return memo[key]
    if isinstance(obj, Foreign):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict state, slot state)
        omegaconf = obj.name.startswith("omegaconf.") and isinstance(state, dict)
        if omegaconf and "_content" in state:  # DictConfig / ListConfig / UnionNode
            # _content: dict / list of nodes, or None, "???" (missing), "${...}"
            content = state["_content"]
            memo[key] = content if isinstance(content, (dict, list)) else None
            memo[key] = to_plain(content, memo)
            return memo[key]
        if omegaconf and "_val" in state:  # AnyNode, StringNode, EnumNode, ...
            memo[key] = to_plain(state["_val"], memo)
            return memo[key]
        if state is None:
            out = memo[key] = [to_plain(a, memo) for a in obj.args]
            return out
        if isinstance(state, dict):
            out = memo[key] = {}
            out.update((to_plain(k, memo), to_plain(v, memo)) for k, v in state.items())
            return out
        memo[key] = to_plain(state, memo)
        return memo[key]
    if isinstance(obj, TypeRef):
        return obj.name
    if isinstance(obj, _NumpyDType):
        return obj.spec
    if isinstance(obj, type) and issubclass(obj, Foreign):
        return obj.name
    if isinstance(obj, dict):
        memo[key] = obj
        items = [(to_plain(k, memo), to_plain(v, memo)) for k, v in obj.items()]
        obj.clear()
        obj.update(items)
        return obj
    if isinstance(obj, list):
        memo[key] = obj
        obj[:] = [to_plain(v, memo) for v in obj]
        return obj
    if isinstance(obj, tuple) and type(obj) is tuple:
        memo[key] = out = tuple(to_plain(v, memo) for v in obj)
        return out
    if type(obj) in (set, frozenset):
        memo[key] = out = type(obj)(to_plain(v, memo) for v in obj)
        return out
    if type(obj) is argparse.Namespace:
        memo[key] = obj
        to_plain(vars(obj), memo)
        return obj
    return obj


_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w-]*(?:\.[\w-]+)*)\}")


def resolve_interpolations(root, max_depth=16):
    """Replace, in place, every value of the plain config ``root`` (nested
    dicts / lists) that is exactly an absolute omegaconf interpolation
    ``"${a.b.c}"`` by the value it refers to, as omegaconf would on access.
    Other interpolations (relative, resolvers such as ``${oc.env:X}``),
    missing targets and ``"???"`` stay as they are. Returns ``root``.

    >>> cfg = {"common": {"tpu": False}, "task": {"tpu": "${common.tpu}", "x": "${nope}"}}
    >>> resolve_interpolations(cfg)["task"]
    {'tpu': False, 'x': '${nope}'}
    """
    def lookup(value, depth):
        match = _REFERENCE.fullmatch(value) if isinstance(value, str) else None
        if match is None or depth >= max_depth:
            return value
        node = root
        for part in match.group(1).split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return value
        return lookup(node, depth + 1)

    seen = set()

    def walk(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in list(items):
            node[k] = lookup(v, 0)
            if isinstance(node[k], (dict, list)):
                walk(node[k])

    if isinstance(root, (dict, list)):
        walk(root)
    return root
