"""streamgrad <-> PyTorch in plain Python: safetensors read/write without the `safetensors` package,
and the torch.nn.Sequential of a streamgrad ModelSpec (JSON).

    import json, torch
    from streamgrad_torch import build_sequential, load_safetensors
    model = build_sequential(json.load(open("spec.json")))
    model.load_state_dict(load_safetensors("model.safetensors"))  # strict: every key and shape

Needs only the standard library and torch (Debian: `apt-get install python3-torch`, run with
/usr/bin/python3). The format checks need no torch at all:

    python3 streamgrad_torch.py --selftest FILE...     # validate, print each file's header as JSON
    python3 streamgrad_torch.py --selftest-write OUT   # write a small F32/F64 file with no torch
"""

import ctypes
import json
import sys
from array import array

__all__ = [
    "SafetensorsError",
    "parse_header",
    "load_safetensors",
    "load_metadata",
    "save_safetensors",
    "encode_safetensors",
    "streamgrad_state_dict",
    "build_sequential",
]

MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit, and streamgrad's
METADATA_KEY = "__metadata__"
ENTRY_KEYS = ("dtype", "shape", "data_offsets")
# Every dtype of the safetensors spec with its size in bits, so "F8_E4M3" is "not supported", not "unknown".
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
    "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}
# The dtypes this module turns into torch tensors (names of torch attributes, resolved when torch is there).
TORCH_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
    "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
}


class SafetensorsError(ValueError):
    """A file that breaks a rule of the format: `file: tensor 'name': rule`, as streamgrad words it."""

    def __init__(self, source, tensor, rule):
        super().__init__(f"{source}: " + (f"tensor '{tensor}': " if tensor is not None else "") + rule)
        self.source, self.tensor, self.rule = source, tensor, rule


def _is_index(v):
    return type(v) is int and v >= 0  # bool is an int subclass: refused here


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {json.dumps(k)}")
        out[k] = v
    return out


def parse_header(buf, source="<buffer>"):
    """Checks every rule of the format on the bytes of a whole file, before any tensor exists.

    Returns (entries, metadata, data_start): entries maps name -> (dtype, shape, begin, end) with
    offsets relative to the data buffer, in file (offset) order. Needs no torch.
    """

    def fail(rule, tensor=None):
        raise SafetensorsError(source, tensor, rule)

    size = len(buf)
    if size < 8:
        fail(f"file is {size} bytes, shorter than the 8-byte header length that starts every safetensors file")
    n = int.from_bytes(buf[:8], "little")
    if n > MAX_HEADER_BYTES:
        fail(f"header length {n} is absurd: the format allows at most {MAX_HEADER_BYTES} bytes (100 MB)")
    if 8 + n > size:
        fail(f"header length {n} runs past the end of the file (file is {size} bytes)")
    data_start = 8 + n
    buffer_length = size - data_start
    try:
        text = bytes(buf[8:data_start]).decode("utf-8")
    except UnicodeDecodeError:
        fail(f"header (bytes 8 to {data_start}) is not valid UTF-8")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except ValueError as e:
        fail(f"header is not valid JSON ({e})")
    if not isinstance(header, dict):
        fail(f"header must be a JSON object mapping tensor names to entries (got {type(header).__name__})")
    if not text.startswith("{"):
        fail(f"header must start with '{{' (got {json.dumps(text[:1])})")

    metadata = header.get(METADATA_KEY, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        fail(f"{METADATA_KEY} must be an object mapping strings to strings (got {json.dumps(metadata)[:80]})")

    # 1. Each entry on its own: keys, dtype, shape, offsets, and that they span exactly the shape's bytes.
    entries = []
    for name, e in header.items():
        if name == METADATA_KEY:
            continue
        if not isinstance(e, dict) or set(e) != set(ENTRY_KEYS):
            fail(f"entry must be an object with exactly the keys dtype, shape, data_offsets (got {json.dumps(e)[:80]})", name)
        dtype, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            fail(f"dtype {json.dumps(dtype)} is unknown (known safetensors dtypes: {' '.join(DTYPE_BITS)})", name)
        if not isinstance(shape, list) or not all(_is_index(d) for d in shape):
            fail(f"shape must be an array of non-negative integers (got {json.dumps(shape)})", name)
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_index(o) for o in offsets):
            fail(f"data_offsets must be two non-negative integers [begin, end] (got {json.dumps(offsets)})", name)
        begin, end = offsets
        if begin > end:
            fail(f"data_offsets [{begin},{end}] must have begin <= end", name)
        numel = 1
        for d in shape:
            numel *= d
        bits = numel * DTYPE_BITS[dtype]
        if bits % 8:
            fail(f"dtype {dtype} with shape {shape} is {bits} bits, not a whole number of bytes", name)
        if bits // 8 != end - begin:
            fail(f"dtype {dtype} with shape {shape} needs {bits // 8} bytes but data_offsets [{begin},{end}] span {end - begin} bytes", name)
        entries.append((name, dtype, shape, begin, end))

    # 2. Together: sorted by offset they tile [0, buffer_length) with no gap, no overlap, nothing after.
    entries.sort(key=lambda t: (t[3], t[4]))  # stable: zero-size tensors keep header order
    at = 0
    for name, _, _, begin, end in entries:
        if begin < at:
            fail(f"data_offsets [{begin},{end}] overlap the previous tensor; tensors must not share bytes", name)
        if begin > at:
            fail(f"data_offsets [{begin},{end}] leave a gap: bytes [{at},{begin}) of the data buffer belong to no tensor", name)
        if end > buffer_length:
            fail(f"data_offsets [{begin},{end}] run past the end of the data buffer (the buffer after the header is {buffer_length} bytes)", name)
        at = end
    if at != buffer_length:
        fail(f"data buffer has {buffer_length - at} trailing bytes after the last tensor (tensors end at byte {at}, the buffer after the header is {buffer_length} bytes)")
    return {name: (dtype, shape, begin, end) for name, dtype, shape, begin, end in entries}, metadata, data_start


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _torch():
    """torch, imported on first use: the format checks and --selftest run without it (and start fast)."""
    try:
        import torch
    except ImportError as e:
        raise ImportError("streamgrad_torch: this needs torch (Debian: apt-get install python3-torch; run /usr/bin/python3)") from e
    return torch


def load_safetensors(path):
    """The tensors of a safetensors file as {name: torch.Tensor}, in file order, after every format check."""
    torch = _torch()
    buf = _read(path)
    entries, _, data_start = parse_header(buf, str(path))
    _little_endian_host()
    out = {}
    for name, (dtype, shape, begin, end) in entries.items():
        if dtype not in TORCH_DTYPES:
            raise SafetensorsError(str(path), name, f"dtype {dtype} is not supported (this reader loads {' '.join(TORCH_DTYPES)})")
        tdtype = getattr(torch, TORCH_DTYPES[dtype])
        if begin == end:  # torch.frombuffer refuses an empty buffer
            out[name] = torch.zeros(shape, dtype=tdtype)
        else:
            # A bytearray of its own per tensor: writable (no warning), aligned, and not tied to the file's bytes.
            out[name] = torch.frombuffer(bytearray(buf[data_start + begin:data_start + end]), dtype=tdtype).reshape(shape)
    return out


def load_metadata(path):
    """The file's __metadata__ (a dict of strings; {} when absent)."""
    return dict(parse_header(_read(path), str(path))[1])


def encode_safetensors(raw, metadata=None):
    """The bytes of a file holding raw = {name: (dtype, shape, bytes)}: keys sorted, data in that order,
    the JSON header padded with spaces so the data starts 8-byte aligned. Needs no torch."""
    header = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError(f"{METADATA_KEY} must map strings to strings (got {metadata!r})")
        header[METADATA_KEY] = dict(metadata)
    parts, at = [], 0
    for name in sorted(raw):
        if name == METADATA_KEY:
            raise ValueError(f"'{METADATA_KEY}' is reserved for metadata and cannot name a tensor")
        dtype, shape, data = raw[name]
        numel = 1
        for d in shape:
            numel *= d
        if dtype not in DTYPE_BITS or numel * DTYPE_BITS[dtype] != 8 * len(data):
            raise ValueError(f"tensor '{name}': {len(data)} bytes do not hold dtype {dtype} with shape {list(shape)}")
        header[name] = {"dtype": dtype, "shape": [int(d) for d in shape], "data_offsets": [at, at + len(data)]}
        parts.append(data)
        at += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return b"".join([len(text).to_bytes(8, "little"), text, *parts])


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: torch.Tensor} as a safetensors file (contiguous, little-endian; keys sorted).
    Integer tensors stay integers: for streamgrad, pass streamgrad_state_dict(model) instead."""
    _torch()
    _little_endian_host()
    names = {v: k for k, v in TORCH_DTYPES.items()}
    raw = {}
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        dtype = names.get(str(t.dtype).removeprefix("torch."))
        if dtype is None:
            raise ValueError(f"tensor '{name}': dtype {t.dtype} cannot be written (writes {' '.join(TORCH_DTYPES)})")
        nbytes = t.numel() * t.element_size()
        raw[name] = (dtype, list(t.shape), ctypes.string_at(t.data_ptr(), nbytes) if nbytes else b"")
    with open(path, "wb") as f:
        f.write(encode_safetensors(raw, metadata))


def streamgrad_state_dict(model_or_state_dict):
    """A state dict streamgrad's loadModule accepts: streamgrad reads F32 and F64 only, so integer
    tensors (BatchNorm's int64 num_batches_tracked) become float32; loadModule converts each value
    to its parameter's dtype."""
    sd = model_or_state_dict.state_dict() if hasattr(model_or_state_dict, "state_dict") else model_or_state_dict
    return {k: v if v.is_floating_point() else v.float() for k, v in sd.items()}


def _little_endian_host():
    if sys.byteorder != "little":
        raise RuntimeError("streamgrad_torch: safetensors data is little-endian; this big-endian host is not supported")


# ---------------------------------------------------------------------------------------------------
# ModelSpec -> torch.nn.Sequential


class _Sequence:
    """What streamgrad's RNN/LSTM/GRU add to torch's, mixed into a subclass of the torch module itself:
    forward returns a tensor (every step, or the top layer's last step with return_last), so the layer
    fits nn.Sequential. Being the torch class itself, it has no parameters or submodules of its own:
    state_dict keys stay `0.weight_ih_l0`, ..., exactly streamgrad's (a wrapper holding the LSTM as a
    child would make them `0.lstm.weight_ih_l0`).

    stateful: each forward starts from the previous forward's final state (detached), or from zeros
    when the batch size changed or after reset_state(), as streamgrad's `stateful` layers."""

    def __init__(self, *args, return_last=False, stateful=False, **kw):
        super().__init__(*args, **kw)  # torch's RNN / LSTM / GRU
        self.return_last = return_last
        self.stateful = stateful
        self.carried = None

    def reset_state(self):
        self.carried = None

    def forward(self, x):
        n = x.shape[0 if self.batch_first else 1]
        h0 = None
        if self.stateful and self.carried is not None:
            h = self.carried[0] if isinstance(self.carried, tuple) else self.carried
            h0 = self.carried if h.shape[1] == n else None
        out, hn = super().forward(x, h0)
        if self.stateful:
            self.carried = tuple(s.detach() for s in hn) if isinstance(hn, tuple) else hn.detach()
        if not self.return_last:
            return out
        return out[:, -1] if self.batch_first else out[-1]

    def extra_repr(self):
        return super().extra_repr() + f", return_last={self.return_last}, stateful={self.stateful}"


_RECURRENT = {}


def _recurrent(kind):
    """streamgrad_torch.RNN / LSTM / GRU: subclasses of torch's, made on first use (torch is imported lazily)."""
    if not _RECURRENT:
        nn = _torch().nn
        for name in ("RNN", "LSTM", "GRU"):
            _RECURRENT[name] = type(name, (_Sequence, getattr(nn, name)), {"__module__": __name__})
    return _RECURRENT[kind]


def __getattr__(name):  # module attributes RNN, LSTM, GRU (PEP 562)
    if name in ("RNN", "LSTM", "GRU"):
        return _recurrent(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_RNN_KEYS = (["inputSize", "hiddenSize"], ["numLayers", "bias", "batchFirst", "returnLast", "stateful"])
# The keys each layer type takes besides `type` (required, optional): streamgrad's src/nn/spec.ts.
LAYER_KEYS = {
    "Linear": (["inFeatures", "outFeatures"], ["bias"]),
    "Conv2d": (["inChannels", "outChannels", "kernelSize"], ["stride", "padding", "dilation", "groups", "bias"]),
    "MaxPool2d": (["kernelSize"], ["stride", "padding"]),
    "AvgPool2d": (["kernelSize"], ["stride", "padding"]),
    "AdaptiveAvgPool2d": ([], ["outputSize"]),
    "Flatten": ([], ["startDim", "endDim"]),
    "ReLU": ([], []),
    "Sigmoid": ([], []),
    "Tanh": ([], []),
    "Softmax": ([], ["dim"]),
    "LogSoftmax": ([], ["dim"]),
    "Dropout": ([], ["p"]),
    "BatchNorm1d": (["numFeatures"], ["eps", "momentum", "affine"]),
    "BatchNorm2d": (["numFeatures"], ["eps", "momentum", "affine"]),
    "LayerNorm": (["normalizedShape"], ["eps", "elementwiseAffine"]),
    "Embedding": (["numEmbeddings", "embeddingDim"], ["paddingIdx"]),
    "RNN": _RNN_KEYS,
    "LSTM": _RNN_KEYS,
    "GRU": _RNN_KEYS,
}


def _pair(v):
    return tuple(v) if isinstance(v, list) else v


def _layer(l):
    nn = _torch().nn
    t, g = l["type"], l.get
    if t == "Linear":
        return nn.Linear(l["inFeatures"], l["outFeatures"], bias=g("bias", True))
    if t == "Conv2d":
        return nn.Conv2d(l["inChannels"], l["outChannels"], _pair(l["kernelSize"]), stride=_pair(g("stride", 1)),
                         padding=_pair(g("padding", 0)), dilation=_pair(g("dilation", 1)), groups=g("groups", 1),
                         bias=g("bias", True))
    if t in ("MaxPool2d", "AvgPool2d"):  # stride defaults to the kernel size in both libraries
        return getattr(nn, t)(_pair(l["kernelSize"]), stride=_pair(g("stride")), padding=_pair(g("padding", 0)))
    if t == "AdaptiveAvgPool2d":
        return nn.AdaptiveAvgPool2d(_pair(g("outputSize", 1)))
    if t == "Flatten":
        return nn.Flatten(g("startDim", 1), g("endDim", -1))
    if t in ("ReLU", "Sigmoid", "Tanh"):
        return getattr(nn, t)()
    if t in ("Softmax", "LogSoftmax"):  # streamgrad's default dim is -1; torch's implicit dim is deprecated
        return getattr(nn, t)(dim=g("dim", -1))
    if t == "Dropout":
        return nn.Dropout(g("p", 0.5))
    if t in ("BatchNorm1d", "BatchNorm2d"):
        return getattr(nn, t)(l["numFeatures"], eps=g("eps", 1e-5), momentum=g("momentum", 0.1), affine=g("affine", True))
    if t == "LayerNorm":
        return nn.LayerNorm(l["normalizedShape"], eps=g("eps", 1e-5), elementwise_affine=g("elementwiseAffine", True))
    if t == "Embedding":
        return nn.Embedding(l["numEmbeddings"], l["embeddingDim"], padding_idx=g("paddingIdx"))
    return _recurrent(t)(l["inputSize"], l["hiddenSize"], num_layers=g("numLayers", 1), bias=g("bias", True),
               batch_first=g("batchFirst", False), return_last=g("returnLast", False), stateful=g("stateful", False))


def build_sequential(spec, where="model"):
    """The torch.nn.Sequential of a streamgrad ModelSpec ({"layers": [...], "dtype": "f32"|"f64"}),
    children named "0", "1", ... as buildModel's, so state_dict keys and shapes equal streamgrad's.
    Weights are torch's own initialisation (seed with torch.manual_seed): load streamgrad's to match it."""
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list) or not spec["layers"]:
        raise ValueError(f"{where}.layers must be a non-empty array (got {json.dumps(spec)[:80]})")
    for k in spec:
        if k not in ("layers", "dtype"):
            raise ValueError(f"{where} has unknown key '{k}' (expected layers, dtype)")
    dtype = spec.get("dtype", "f32")
    if dtype not in ("f32", "f64"):
        raise ValueError(f"{where}.dtype must be 'f32' or 'f64' (got {json.dumps(dtype)})")
    nn = _torch().nn
    layers = []
    for i, l in enumerate(spec["layers"]):
        at = f"{where}.layers[{i}]"
        if not isinstance(l, dict) or l.get("type") not in LAYER_KEYS:
            raise ValueError(f"{at}.type must be one of {', '.join(LAYER_KEYS)} (got {json.dumps(l)[:80]})")
        required, optional = LAYER_KEYS[l["type"]]
        for k in required:
            if k not in l:
                raise ValueError(f"{at} ({l['type']}) is missing '{k}'")
        for k in l:
            if k != "type" and k not in required and k not in optional:
                raise ValueError(f"{at} ({l['type']}) has unknown key '{k}' (expected {', '.join(required + optional) or 'no other keys'})")
        layers.append(_layer(l))
    model = nn.Sequential(*layers)
    return model.double() if dtype == "f64" else model  # .double() leaves num_batches_tracked int64, as torch does


# ---------------------------------------------------------------------------------------------------
# Torch-free self-test: `python3 streamgrad_torch.py --selftest FILE...` / `--selftest-write OUT`


def _summary(path):
    """The checked header of a file, with each F32/F64 tensor's sum (decoded with the stdlib alone)."""
    buf = _read(path)
    entries, metadata, data_start = parse_header(buf, str(path))
    _little_endian_host()
    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        info = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
        if dtype in ("F32", "F64"):
            values = array("f" if dtype == "F32" else "d", buf[data_start + begin:data_start + end])
            info["sum"] = sum(values)
        tensors[name] = info
    return {"file": str(path), "header_bytes": data_start - 8, "metadata": metadata, "tensors": tensors}


def _example_bytes():
    """A small file written with the stdlib alone: F32 'a' [2,3] = 0..5, F64 'b' [2] = [0.25,-8], F32 'c' []."""
    return encode_safetensors(
        {
            "b": ("F64", [2], array("d", [0.25, -8.0]).tobytes()),
            "a": ("F32", [2, 3], array("f", range(6)).tobytes()),
            "c": ("F32", [], array("f", [1.5]).tobytes()),
        },
        {"format": "pt", "writer": "streamgrad_torch"},
    )


def main(argv):
    if len(argv) >= 2 and argv[0] == "--selftest":
        status = 0
        for path in argv[1:]:
            try:
                print(json.dumps(_summary(path)))
            except SafetensorsError as e:
                print(f"streamgrad_torch: {e}", file=sys.stderr)
                status = 1
        return status
    if len(argv) == 2 and argv[0] == "--selftest-write":
        data = _example_bytes()
        parse_header(data, argv[1])  # what we write passes our own checks
        with open(argv[1], "wb") as f:
            f.write(data)
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
