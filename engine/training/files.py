"""The user's own data files, read from disk (nothing is downloaded):

- CSV with a header row: one column is the target (option ``target``: a name; default the last
  column). Text targets, or whole-number targets with few values, make a classification task.
- NumPy ``.npz`` holding ``x`` and ``y`` (also ``X``/``inputs``/``features`` and ``y``/``labels``/
  ``targets``), or a 2-D ``.npy`` whose column ``target`` (default -1, the last) is the target.
- A folder with one sub-folder of images per class (PNG, JPEG, BMP, GIF; read with Pillow).
- MNIST / Fashion-MNIST IDX files (``*-images-idx3-ubyte`` with the matching labels file; ``.gz`` too),
  or a folder holding them.
- CIFAR-10 "python version" batches (a folder with ``data_batch_1`` ... ``test_batch``), read with a
  restricted unpickler that builds only plain containers and NumPy arrays, never arbitrary objects.

A missing or malformed file raises ``DataError`` naming the file and what is wrong; so does a NaN or
infinite value in float data (naming its CSV column and line, or its array and index), which no network
can be trained on.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .data import CLASSIFICATION, REGRESSION, DataError, Dataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_path(path: Path, options: dict[str, Any]) -> Dataset:
    path = Path(path)
    if path.is_dir():
        if _cifar_batches(path):
            return _only(options, path, ()) or load_cifar10(path)
        if _idx_pairs(path):
            return _only(options, path, ()) or load_idx_folder(path)
        return load_image_folder(path, **_pick(options, path, ("size", "grayscale")))
    name = path.name.lower()
    if name.endswith(".csv"):
        return load_csv(path, **_pick(options, path, ("target", "task")))
    if name.endswith(".npz"):
        return load_npz(path, **_pick(options, path, ("task",)))
    if name.endswith(".npy"):
        return load_npy(path, **_pick(options, path, ("target", "task")))
    if "idx" in name and "ubyte" in name:
        return _only(options, path, ()) or load_idx(path)
    raise DataError(f"{path}: not a data file DeepCanvas reads (CSV, .npy, .npz, MNIST IDX, a CIFAR-10 folder "
                    "or a folder of image folders)")


def _pick(options: dict, path: Path, allowed: tuple[str, ...]) -> dict:
    for key in options:
        if key not in allowed:
            raise DataError(f"{path}: unknown option '{key}' for this kind of file "
                            f"(its options: {', '.join(allowed) or 'none'})")
    return dict(options)


def _only(options, path, allowed):
    _pick(options, path, allowed)
    return None


def _task_for(values: np.ndarray, task: str | None, path: Path) -> str:
    if task is not None:
        if task not in (CLASSIFICATION, REGRESSION):
            raise DataError(f"{path}: option 'task' must be 'classification' or 'regression', got {task!r}")
        return task
    if values.dtype.kind in "USO":
        return CLASSIFICATION
    whole = np.all(np.isfinite(values)) and np.all(np.mod(values, 1) == 0)
    return CLASSIFICATION if whole and len(np.unique(values)) <= 50 else REGRESSION


def _encode_classes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    if values.dtype.kind in "fc":
        values = values.astype(np.int64)
    uniques, ids = np.unique(values, return_inverse=True)
    return ids.astype(np.int64), [str(u) for u in uniques]


# --------------------------------------------------------------------------- CSV
def load_csv(path: Path, target: str | int | None = None, task: str | None = None) -> Dataset:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows, starts, start = [], [], 1
            for row in reader:  # each row's first line in the file (a quoted cell may span lines)
                rows.append(row)
                starts.append(start)
                start = reader.line_num + 1
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    except (OSError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the CSV ({exc})") from None
    kept = [k for k, r in enumerate(rows) if any(cell.strip() for cell in r)]  # (blank lines dropped)
    rows, starts = [rows[k] for k in kept], [starts[k] for k in kept]
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header row and at least one row of data")
    header = [h.strip() for h in rows[0]]
    for row, at in zip(rows[1:], starts[1:]):
        if len(row) != len(header):
            raise DataError(f"{path}: line {at} has {len(row)} values but the header names {len(header)} columns")
    line = starts[1:]  # the file's line of each data row
    if target is None:
        col = len(header) - 1
    elif isinstance(target, int) or (isinstance(target, str) and target.lstrip("-").isdigit()
                                     and target not in header):
        col = int(target) % len(header)
    elif target in header:
        col = header.index(target)
    else:
        raise DataError(f"{path}: no column named {target!r} (the columns: {', '.join(header)})")
    if len(header) < 2:
        raise DataError(f"{path}: needs at least one input column besides the target")
    data = rows[1:]
    features = np.empty((len(data), len(header) - 1), dtype=np.float32)
    feature_cols = [c for c in range(len(header)) if c != col]
    with np.errstate(over="ignore"):  # a number beyond float32 becomes inf, refused just below
        for j, c in enumerate(feature_cols):
            for i, row in enumerate(data):
                try:
                    features[i, j] = float(row[c])
                except ValueError:
                    raise DataError(f"{path}: column '{header[c]}' holds {row[c]!r} on line {line[i]}, which is not "
                                    "a number; remove the column or encode it as numbers") from None
    at = _non_finite_at(features)  # 'nan', 'inf', '-inf', or a number beyond float32 such as '1e39'
    if at is not None:
        i, c = at[0], feature_cols[at[1]]
        raise DataError(f"{path}: column '{header[c]}' holds {data[i][c]!r} on line {line[i]}, "
                        f"{_not_finite(data[i][c])}")
    raw_target = np.array([row[col].strip() for row in data])
    empty = np.flatnonzero(raw_target == "")
    if len(empty):
        raise DataError(f"{path}: the target column '{header[col]}' is empty on line {line[empty[0]]}; every row "
                        "needs a target: fill it in or drop the row")
    try:
        numeric = raw_target.astype(np.float64)
    except ValueError:
        numeric = None
    kind = _task_for(numeric if numeric is not None else raw_target, task, path)
    if numeric is not None:
        with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused just below
            at = _non_finite_at(numeric if kind == CLASSIFICATION else numeric.astype(np.float32))
        if at is not None:
            i = at[0]
            raise DataError(f"{path}: the target column '{header[col]}' holds {data[i][col]!r} on line {line[i]}, "
                            f"{_not_finite(data[i][col])}")
    if kind == CLASSIFICATION:
        y, classes = _encode_classes(numeric if numeric is not None else raw_target)
    else:
        if numeric is None:
            raise DataError(f"{path}: the target column '{header[col]}' is not numeric, so it cannot be regressed")
        y, classes = numeric.astype(np.float32)[:, None], None
    return Dataset(path.name, features, y, kind, classes, kind="tabular",
                   description=f"{len(data)} rows of {path.name}; target column '{header[col]}'",
                   meta={"features": [header[c] for c in feature_cols], "target": header[col]})


def _not_finite(cell: str) -> str:
    """Why a CSV cell that reads as a number cannot be trained on."""
    if np.isfinite(float(cell)):
        return "which is too large for 32-bit floats (beyond ±3.4e38); rescale the column"
    return "which is not a finite number (NaN and infinite values cannot be trained on); fill it in or drop the row"


# --------------------------------------------------------------------------- NumPy
# What reading an .npy/.npz (or one array inside an .npz) can raise on a damaged or unusual file: a
# truncated or corrupt zip (BadZipFile, zlib.error), a truncated array (ValueError/EOFError), object arrays
# (ValueError, since pickles are never loaded), an encrypted zip (RuntimeError), an unsupported compression.
_NUMPY_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError,
                      NotImplementedError)
X_KEYS = ("x", "X", "inputs", "features", "data", "x_train")
Y_KEYS = ("y", "Y", "labels", "targets", "target", "y_train")


@contextlib.contextmanager
def _np_open(path: Path):
    """The array of an .npy, or the archive of an .npz, with the file open until the block ends (np.load
    given a path leaves the file open when the zip proves damaged)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: not a readable NumPy file ({exc})") from None
    with f:
        magic = f.read(6)
        f.seek(0)
        if not (magic.startswith(b"\x93NUMPY") or magic.startswith(b"PK")):
            # (np.load takes anything else for a pickle, and would say so)
            raise DataError(f"{path}: not a NumPy file: it does not begin as an .npy or .npz file does (a damaged "
                            "file, or another kind of file named .npy/.npz); save arrays with np.save or np.savez")
        try:
            loaded = np.load(f, allow_pickle=False)
        except _NUMPY_READ_ERRORS as exc:
            raise DataError(f"{path}: not a readable NumPy file ({exc})") from None
        try:
            yield loaded
        finally:
            if not isinstance(loaded, np.ndarray):
                loaded.close()


def _npz_array(path: Path, archive, key: str) -> np.ndarray:
    """One array of an .npz, read now (the archive reads its members lazily, so a damaged member shows
    only here)."""
    try:
        arr = archive[key]
    except _NUMPY_READ_ERRORS as exc:
        raise DataError(f"{path}: not a readable NumPy file (array '{key}': {exc})") from None
    if not isinstance(arr, np.ndarray):  # a member without the .npy header comes back as raw bytes
        raise DataError(f"{path}: not a readable NumPy file (array '{key}' is not a NumPy array)")
    if arr.ndim == 0:
        raise DataError(f"{path}: array '{key}' holds a single value; it needs one entry per example")
    return arr


def load_npz(path: Path, task: str | None = None) -> Dataset:
    with _np_open(path) as archive:
        if isinstance(archive, np.ndarray):
            raise DataError(f"{path}: holds a single array, not an .npz archive of 'x' and 'y'; name it .npy if "
                            "it is a table whose last column is the target")
        names = list(archive.keys())
        x_key = next((k for k in X_KEYS if k in archive), None)
        y_key = next((k for k in Y_KEYS if k in archive), None)
        if x_key is None or y_key is None:
            raise DataError(f"{path}: expected arrays named 'x' and 'y' (it holds: {', '.join(names) or 'nothing'})")
        x, y = _npz_array(path, archive, x_key), _npz_array(path, archive, y_key)
    return _from_arrays(path, x, y, task, x_at=lambda at: _index(x_key, at), y_at=lambda at: _index(y_key, at),
                        keys=(x_key, y_key))


def load_npy(path: Path, target: int | str = -1, task: str | None = None) -> Dataset:
    with _np_open(path) as arr:
        if not isinstance(arr, np.ndarray):
            raise DataError(f"{path}: holds several arrays (an .npz archive); name it .npz")
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise DataError(f"{path}: a single .npy must be a 2-D table (rows, columns) with the target as one column, "
                        f"got shape {arr.shape}; save inputs and targets together with np.savez(x=..., y=...)")
    try:
        col = int(target) % arr.shape[1]
    except ValueError:
        raise DataError(f"{path}: option 'target' must be a column number, got {target!r}") from None

    def x_at(at):  # a place in the inputs (the table less its target column) as a place in the table
        return f"row {at[0]}, column {at[1] + (at[1] >= col)}"

    return _from_arrays(path, np.delete(arr, col, axis=1), arr[:, col], task, x_at=x_at,
                        y_at=lambda at: f"row {at[0]}, column {col} (the target)")


def _index(key: str, at) -> str:
    return f"{key}[{', '.join(str(int(i)) for i in at)}]"


def _non_finite_at(arr: np.ndarray) -> tuple[int, ...] | None:
    """Where the first NaN or infinity of ``arr`` is, or None when it has none (or holds no floats: integers
    and the uint8 of images pass at no cost). One vectorised ``np.isfinite`` pass, over blocks of about
    4M values so that a large array needs no mask as large as itself."""
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return None
    arr = np.atleast_1d(arr)
    step = max(1, (1 << 22) // max(1, arr.size // len(arr)))
    for start in range(0, len(arr), step):
        finite = np.isfinite(arr[start:start + step])
        if not finite.all():
            at = np.unravel_index(int(np.argmin(finite)), finite.shape)
            return (start + int(at[0]),) + tuple(int(i) for i in at[1:])
    return None


def _check_finite(path: Path, values: np.ndarray, where, source: np.ndarray | None = None) -> None:
    """Refuse NaN and infinite values (``values``, as they will be trained on), naming the first one by
    ``where(index)``; ``source`` is the array as the file holds it, if ``values`` is a converted copy (a
    finite float64 too large for float32 becomes infinite)."""
    at = _non_finite_at(values)
    if at is None:
        return
    value = float((values if source is None else source)[at])
    if np.isfinite(value):
        raise DataError(f"{path}: {where(at)} is {value:g}, too large for 32-bit floats (beyond ±3.4e38); "
                        "rescale the data")
    raise DataError(f"{path}: {where(at)} is {value:g}; NaN and infinite values cannot be trained on: fill them "
                    "in or drop those rows (this is the first one)")


def _from_arrays(path: Path, x: np.ndarray, y: np.ndarray, task: str | None, x_at=None, y_at=None,
                 keys: tuple[str, str] | None = None) -> Dataset:
    """A data set from inputs ``x`` and targets ``y`` read from ``path``; ``x_at``/``y_at`` name a place in
    them as the file has it (for messages), ``keys`` their names in an .npz."""
    x_at = x_at or (lambda at: _index("x", at))
    y_at = y_at or (lambda at: _index("y", at))
    inputs, targets = (f"the inputs (array '{keys[0]}')", f"the targets (array '{keys[1]}')") if keys else \
        ("the inputs", "the targets")
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} inputs but {len(y)} targets")
    if x.dtype.kind not in "fiub":
        raise DataError(f"{path}: {inputs} must be numbers, got dtype {x.dtype}")
    if y.dtype.kind not in "fiubUS":
        raise DataError(f"{path}: {targets} must be numbers or text labels, got dtype {y.dtype}")
    kind = _task_for(y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y, task, path)
    if kind == CLASSIFICATION:
        _check_finite(path, y, y_at)
    if kind == CLASSIFICATION and y.ndim == 1:
        y, classes = _encode_classes(y)
    elif kind == CLASSIFICATION:
        y, classes = y.astype(np.int64), None
    else:
        if y.dtype.kind in "US":
            raise DataError(f"{path}: {targets} are text, so they cannot be regressed")
        source = y
        with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused just below
            y, classes = y.astype(np.float32).reshape(len(y), -1) if y.ndim == 1 else y.astype(np.float32), None
        _check_finite(path, y.reshape(source.shape), y_at, source)
    sample_kind = "image" if x.ndim in (3, 4) else "tabular"
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif x.dtype.kind != "i" or sample_kind == "image":
        with np.errstate(over="ignore"):
            source, x = x, x.astype(np.float32, copy=False)
        _check_finite(path, x, x_at, source)
    return Dataset(path.name, x, y, kind, classes, kind=sample_kind, description=f"arrays from {path.name}")


# --------------------------------------------------------------------------- image folders
def load_image_folder(path: Path, size: int | str | None = None, grayscale: bool | str = False) -> Dataset:
    """One sub-folder per class. Images are resized to ``size`` (default: the first image's size)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow is a dependency
        raise DataError("reading image folders needs Pillow: pip install pillow") from None
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{path}: expected one sub-folder of images per class, found no sub-folders")
    grayscale = str(grayscale).lower() in ("1", "true", "yes") if isinstance(grayscale, str) else bool(grayscale)
    mode = "L" if grayscale else "RGB"
    images, labels, target_size = [], [], None
    if size is not None:
        try:
            side = int(size)
        except ValueError:
            raise DataError(f"{path}: option 'size' must be a number of pixels, got {size!r}") from None
        target_size = (side, side)
    for k, cls in enumerate(classes):
        files = sorted(p for p in (path / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path / cls}: the class folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert(mode)
                    if target_size is None:
                        target_size = im.size
                    if im.size != target_size:
                        im = im.resize(target_size, Image.BILINEAR)
                    images.append(np.asarray(im, dtype=np.uint8))
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{f}: not a readable image ({exc})") from None
            labels.append(k)
    x = np.stack(images).astype(np.float32) / 255.0
    x = x[:, None] if grayscale else x.transpose(0, 3, 1, 2)
    return Dataset(path.name, x, np.array(labels, dtype=np.int64), CLASSIFICATION, classes, kind="image",
                   description=f"{len(labels)} images in {len(classes)} class folders of {path}")


# --------------------------------------------------------------------------- MNIST IDX
def _read_maybe_gz(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: a damaged gzip file ({exc})") from None
    return raw


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST file format): magic 0x0000 <type> <ndim>, big-endian sizes, then data."""
    raw = _read_maybe_gz(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    types = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in types:
        raise DataError(f"{path}: unknown IDX data type 0x{raw[2]:02x}")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: the file ends inside its header")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(types[raw[2]])
    count = int(np.prod(dims)) if dims else 0
    body = raw[4 + 4 * ndim:]
    if len(body) != count * dtype.itemsize:
        raise DataError(f"{path}: the header promises {dims} values ({count * dtype.itemsize} bytes) but "
                        f"{len(body)} bytes follow; the file is truncated or damaged")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _labels_for(images: Path) -> Path:
    name = images.name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1")
    return images.with_name(name)


def _idx_pairs(folder: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for img in sorted(folder.iterdir()):
        if "images" in img.name and "idx3" in img.name:
            lab = _labels_for(img)
            if lab.exists():
                pairs.append((img, lab))
    return pairs


def load_idx(images: Path) -> Dataset:
    if "labels" in images.name:
        raise DataError(f"{images}: this is a labels file; give the matching images file (…-images-idx3-ubyte)")
    labels = _labels_for(images)
    if not labels.exists():
        raise DataError(f"{images}: the labels file {labels.name} is not beside it")
    return _idx_dataset(images.name, [(images, labels)])


def load_idx_folder(folder: Path) -> Dataset:
    return _idx_dataset(folder.name, _idx_pairs(folder))


def _idx_dataset(name: str, pairs) -> Dataset:
    xs, ys = [], []
    for img, lab in pairs:
        x, y = read_idx(img), read_idx(lab)
        if x.ndim != 3:
            raise DataError(f"{img}: expected images (count, rows, columns), got shape {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{lab}: expected {len(x)} labels for {img.name}, got shape {y.shape}")
        _check_finite(img, x, lambda at: f"image {at[0]}, row {at[1]}, column {at[2]}")  # float IDX types
        _check_finite(lab, y, lambda at: f"label {at[0]}")
        xs.append(x)
        ys.append(y)
    x = np.concatenate(xs).astype(np.float32)[:, None] / 255.0
    y = np.concatenate(ys).astype(np.int64)
    classes = [str(c) for c in range(int(y.max()) + 1)]
    return Dataset(name, x, y, CLASSIFICATION, classes, kind="image",
                   description=f"{len(x)} IDX images from {', '.join(p[0].name for p in pairs)}")


# --------------------------------------------------------------------------- CIFAR-10
class _SafeUnpickler(pickle.Unpickler):
    """Builds only NumPy arrays and plain containers: a CIFAR batch needs nothing else, and a tampered
    file cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_batches(folder: Path) -> list[Path]:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return [folder / n for n in names if (folder / n).exists()]


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _SafeUnpickler(io.BufferedReader(f), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR-10 python batch (expected a dict)")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise DataError(f"{path}: a CIFAR-10 batch needs 'data' and 'labels' entries")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: expected data shaped (count, 3072), got {data.shape}")
    _check_finite(path, data, lambda at: _index("data", at))  # CIFAR's own batches are uint8: no cost
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: the 'labels' entry must be class ids 0-9 ({exc})") from None
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: the 'labels' entry must be class ids 0-9, it holds {int(labels.min())} to "
                        f"{int(labels.max())}")
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def load_cifar10(folder: Path) -> Dataset:
    batches = _cifar_batches(folder)
    if not batches:
        raise DataError(f"{folder}: no CIFAR-10 batches (data_batch_1 ... data_batch_5, test_batch)")
    parts = [_read_cifar_batch(p) for p in batches]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    y = np.concatenate([p[1] for p in parts])
    return Dataset("cifar10", x, y, CLASSIFICATION, CIFAR10_CLASSES, kind="image",
                   description=f"{len(x)} CIFAR-10 images from {', '.join(p.name for p in batches)}")
