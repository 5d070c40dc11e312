"""Data sets: built-ins, the user's files, seeded stratified splits, fitting data to the Input node."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from engine.training import DataError, Dataset, default_ratios, load_dataset, split_dataset
from engine.training.data import fit_inputs, fit_targets
from engine.training.datasets import BUILTINS, corpus_text


# --------------------------------------------------------------------------- built-ins
def test_every_builtin_is_seeded_and_well_formed():
    shapes = {"digits": ((1, 8, 8), (), 10), "moons": ((2,), (), 2), "circles": ((2,), (), 2),
              "spirals": ((2,), (), 3), "xor": ((2,), (), 2), "curve": ((1,), (1,), None),
              "sine-wave": ((40, 1), (1,), None), "shakespeare": ((32,), (), None), "dates": ((30,), (10,), 11),
              "tagging": ((40,), (40,), 18)}
    assert set(shapes) == set(BUILTINS)
    for name, (x_shape, y_shape, classes) in shapes.items():
        ds = load_dataset(name, seed=1)
        assert ds.sample_shape == x_shape and ds.y.shape[1:] == y_shape, name
        assert np.isfinite(ds.x).all() if ds.x.dtype.kind == "f" else True
        if classes is not None:
            assert ds.num_classes == classes, name
        again = load_dataset(name, seed=1)
        assert np.array_equal(ds.x, again.x) and np.array_equal(ds.y, again.y), name
    assert not np.array_equal(load_dataset("spirals", seed=1).x, load_dataset("spirals", seed=2).x)


def test_digits_are_real_and_offered_at_lenet_sizes():
    d8 = load_dataset("digits")
    assert len(d8) == 1797 and d8.x.min() == 0 and d8.x.max() == 1
    d32 = load_dataset("digits", {"size": 32})
    assert d32.sample_shape == (1, 32, 32)
    # A resized digit keeps its mean brightness (bilinear, no antialias needed when growing).
    assert abs(d32.x[0].mean() - d8.x[0].mean()) < 0.05
    assert load_dataset("digits", {"size": "28"}).sample_shape == (1, 28, 28)


def test_options_are_checked_by_name():
    with pytest.raises(DataError, match=r"data set 'spirals' has no option 'nosie' \(its options: samples, classes, noise\)"):
        load_dataset("spirals", {"nosie": 0.3})
    with pytest.raises(DataError, match=r"option 'samples' expects int"):
        load_dataset("moons", {"samples": "many"})
    with pytest.raises(DataError, match=r"unknown data set 'mnist': the built-in ones are digits"):
        load_dataset("mnist")
    with pytest.raises(DataError, match=r"no/such/file.csv: no such file or folder"):
        load_dataset("no/such/file.csv")


def test_text_and_date_tasks():
    text = corpus_text()
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert 30_000 < len(text) < 40_000
    ds = load_dataset("shakespeare", {"window": 16, "stride": 4})
    vocab = ds.meta["vocab"]
    first = "".join(vocab[i] for i in ds.x[0]) + vocab[ds.y[0]]
    assert first == text[:17]
    seq = load_dataset("shakespeare", {"window": 8, "target": "sequence"})
    assert np.array_equal(seq.x[0, 1:], seq.y[0, :-1])
    dates = load_dataset("dates", {"samples": 200}, seed=4)
    out = dates.meta["output_vocab"]
    iso = "".join(out[i] for i in dates.y[0])
    assert len(iso) == 10 and iso[4] == "-" and iso[7] == "-" and 1950 <= int(iso[:4]) <= 2049
    human = "".join(dates.meta["input_vocab"][i] for i in dates.x[0]).rstrip("\0")
    assert iso[:4] in human


def test_tagging_needs_the_context_on_both_sides():
    """Padding is id 0 with tag 0 and comes only after the words; every sentence has a noun phrase and a
    verb; and a word's most frequent tag is often wrong (shared words), so a tagger must read the words
    around it: the most-frequent-tag baseline stays near 92% of the words."""
    from collections import Counter, defaultdict

    ds = load_dataset("tagging", {"samples": 3000}, seed=0)
    tags = ds.classes
    assert tags[0] == "<pad>" and len(tags) == 18 and {"NOUN", "VERB", "DET", "ADP", "PUNCT"} <= set(tags)
    words = ds.x > 0
    assert np.array_equal(words, ds.y > 0)
    assert (np.diff(words.astype(int), axis=1) <= 0).all()  # no word after the padding starts
    assert (ds.y == tags.index("VERB")).any(1).all()
    lengths = words.sum(1)
    assert 12 < lengths.mean() < 20 and lengths.max() == 40
    seen = defaultdict(Counter)
    for w, t in zip(ds.x[:2400][words[:2400]], ds.y[:2400][words[:2400]]):
        seen[w][t] += 1
    assert sum(len(c) > 1 for c in seen.values()) > 400  # words seen with two tags
    best = {w: c.most_common(1)[0][0] for w, c in seen.items()}
    test_w, test_t = ds.x[2400:][words[2400:]], ds.y[2400:][words[2400:]]
    baseline = np.mean([best.get(w, tags.index("NOUN")) == t for w, t in zip(test_w, test_t)])
    assert 0.85 < baseline < 0.95, baseline
    with pytest.raises(DataError, match="'length' must be at least 4"):
        load_dataset("tagging", {"length": 2})


# --------------------------------------------------------------------------- splits
def test_rows_of_a_data_set_are_found_by_their_place_in_the_whole():
    """A run's report carries the examples its galleries show, not the whole data set (a user's CIFAR-10
    is 737 MB and the app keeps every run's report)."""
    whole = Dataset("d", np.arange(50 * 3, dtype=np.float32).reshape(50, 3), np.arange(50) % 4, "classification",
                    ["a", "b", "c", "d"], kind="points", meta={"vocab": ["x"]}, inputs={"extra": np.arange(50) * 10})
    part = whole.rows([40, 7, 7, 12])
    assert list(part.index) == [7, 12, 40] and len(part) == 3
    for i in (7, 12, 40):
        assert np.array_equal(part.example(i), whole.example(i)) and np.array_equal(part.example(i), whole.x[i])
    assert list(part.inputs["extra"]) == [70, 120, 400] and list(part.y) == [3, 0, 0]
    assert part.classes == whole.classes and part.kind == "points" and part.meta == {"vocab": ["x"]}
    with pytest.raises(IndexError, match="example 8 of data set 'd' is not among the rows kept"):
        part.example(8)
    with pytest.raises(IndexError, match="50 examples: no example 50"):
        whole.rows([3, 50])
    with pytest.raises(ValueError, match="holds some rows already"):
        part.rows([7])
    none = whole.rows([])  # (a task without per-example results: a sample's description needs its kind)
    assert len(none) == 0 and none.kind == "points"
    # The same rows of the same data are the same; other rows, values or data are not.
    assert part.same_as(whole.rows([7, 12, 40])) and not part.same_as(whole.rows([7, 12]))
    other = whole.rows([7, 12, 40])
    other.x[1, 0] += 1
    assert not part.same_as(other) and not part.same_as(whole) and whole.same_as(whole)
    renamed = whole.rows([7, 12, 40])
    renamed.meta["vocab"] = ["y"]  # (the same ids, another vocabulary)
    assert not part.same_as(renamed)


def test_default_ratios_follow_the_data_size():
    assert default_ratios(1_000) == (0.6, 0.2, 0.2)
    assert default_ratios(10_000) == pytest.approx((0.6, 0.2, 0.2))
    assert default_ratios(2_000_000) == pytest.approx((0.98, 0.01, 0.01))
    dev = default_ratios(100_000)[1]
    assert 0.01 < dev < 0.2


def test_split_is_seeded_stratified_and_disjoint():
    ds = load_dataset("digits")
    a = split_dataset(ds, seed=5)
    b = split_dataset(ds, seed=5)
    c = split_dataset(ds, seed=6)
    assert all(np.array_equal(a.indices(s), b.indices(s)) for s in ("train", "dev", "test"))
    assert not np.array_equal(a.dev, c.dev)
    every = np.concatenate([a.train, a.dev, a.test])
    assert len(every) == len(ds) == len(np.unique(every))
    assert abs(len(a.train) / len(ds) - 0.6) < 0.01
    for part in (a.train, a.dev, a.test):  # each class in the same proportion everywhere
        share = np.bincount(ds.y[part], minlength=10) / len(part)
        assert np.abs(share - np.bincount(ds.y, minlength=10) / len(ds)).max() < 0.01
    rec = a.record()
    assert rec["sizes"]["train"] == len(a.train) and rec["stratified"] and len(rec["indices_sha256"]) == 64
    reg = load_dataset("curve")
    assert not split_dataset(reg, [0.8, 0.1, 0.1]).stratified


# --------------------------------------------------------------------------- fitting to the Input node
def test_inputs_are_resized_flattened_or_refused_with_both_shapes():
    digits = load_dataset("digits")
    x, notes = fit_inputs(digits, (1, 32, 32), "image", "float32")
    assert x.shape == (1797, 1, 32, 32) and notes == ["resized 8x8 -> 32x32"]
    x, notes = fit_inputs(digits, (3, 28, 28), "image", "float32")
    assert x.shape == (1797, 3, 28, 28) and "channels 1 -> 3" in notes
    x, _ = fit_inputs(digits, (64,), "pixels", "float32")
    assert x.shape == (1797, 64)
    x, notes = fit_inputs(digits, (784,), "pixels", "float32")  # an MNIST-sized MLP
    assert x.shape == (1797, 784) and "28x28" in notes[0]
    with pytest.raises(DataError, match=r"data set 'digits' gives samples shaped \(1, 8, 8\) but Input 'x' "
                                        r"expects \(5,\)"):
        fit_inputs(digits, (5,), "x", "float32")
    with pytest.raises(DataError, match=r"Input 'x' expects int64 token"):
        fit_inputs(digits, (1, 8, 8), "x", "int64")


def test_targets_are_checked_against_the_target_node_and_output():
    digits = load_dataset("digits")
    assert fit_targets(digits, (), "label", "int64", 10).dtype == np.int64
    with pytest.raises(DataError, match=r"has 10 classes but the network's output gives 3 class scores"):
        fit_targets(digits, (), "label", "int64", 3)
    with pytest.raises(DataError, match=r"Target 'label' expects float32"):
        fit_targets(digits, (), "label", "float32", None)
    curve = load_dataset("curve")
    assert fit_targets(curve, (1,), "y", "float32", None).shape == (500, 1)
    with pytest.raises(DataError, match=r"gives targets shaped \(1,\) but Target 'y' expects \(3,\)"):
        fit_targets(curve, (3,), "y", "float32", None)


# --------------------------------------------------------------------------- the user's files
def test_csv_with_a_named_target_and_text_classes(tmp_path):
    path = tmp_path / "flowers.csv"
    rows = ["petal,sepal,kind"] + [f"{i * 0.1:.1f},{i % 3},{'rose' if i % 2 else 'tulip'}" for i in range(20)]
    path.write_text("\n".join(rows) + "\n")
    ds = load_dataset(str(path), {"target": "kind"})
    assert ds.task == "classification" and ds.classes == ["rose", "tulip"] and ds.x.shape == (20, 2)
    with pytest.raises(DataError, match=r"flowers.csv: column 'kind' holds 'tulip' on line 2, which is not a number"):
        load_dataset(str(path), {"target": "petal"})
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("a,b,y\n" + "".join(f"{i},{i * i},{i * 0.37:.2f}\n" for i in range(60)))
    reg = load_dataset(str(numbers))  # the last column by default; many distinct values: regression
    assert reg.task == "regression" and reg.y.shape == (60, 1) and reg.x.shape == (60, 2)
    with pytest.raises(DataError, match=r"flowers.csv: no column named 'colour' \(the columns: petal, sepal, kind\)"):
        load_dataset(str(path), {"target": "colour"})
    bad = tmp_path / "ragged.csv"
    bad.write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataError, match=r"ragged.csv: line 3 has 1 values but the header names 2 columns"):
        load_dataset(str(bad))


def test_numpy_files(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset(str(tmp_path / "d.npz"))
    assert ds.task == "classification" and ds.x.shape == (30, 5)
    np.save(tmp_path / "table.npy", np.column_stack([x, x[:, 0] * 2.5]))
    reg = load_dataset(str(tmp_path / "table.npy"))
    assert reg.task == "regression" and reg.x.shape == (30, 5)
    np.savez(tmp_path / "wrong.npz", inputs_=x)
    with pytest.raises(DataError, match=r"wrong.npz: expected arrays named 'x' and 'y' \(it holds: inputs_\)"):
        load_dataset(str(tmp_path / "wrong.npz"))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"junk.npy: not a NumPy file: it does not begin as an .npy or .npz"):
        load_dataset(str(tmp_path / "junk.npy"))


def test_image_folder(tmp_path):
    from PIL import Image

    for k, cls in enumerate(["cat", "dog"]):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((10, 12, 3), 40 * k + i, np.uint8)).save(tmp_path / "pets" / cls / f"{i}.png")
    ds = load_dataset(str(tmp_path / "pets"), {"size": 8})
    assert ds.classes == ["cat", "dog"] and ds.x.shape == (6, 3, 8, 8) and ds.kind == "image"
    assert list(ds.y) == [0, 0, 0, 1, 1, 1]
    (tmp_path / "pets" / "dog" / "3.png").write_bytes(b"broken")
    with pytest.raises(DataError, match=r"3.png: not a readable image"):
        load_dataset(str(tmp_path / "pets"))


def _idx(data: np.ndarray) -> bytes:
    code = {np.uint8: 0x08}[data.dtype.type]
    return bytes([0, 0, code, data.ndim]) + struct.pack(f">{data.ndim}I", *data.shape) + data.tobytes()


def test_mnist_idx_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5, 9], dtype=np.uint8)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels)))
    ds = load_dataset(str(tmp_path / "train-images-idx3-ubyte.gz"))
    assert ds.x.shape == (7, 1, 28, 28) and list(ds.y) == [0, 1, 2, 3, 4, 5, 9]
    assert np.allclose(ds.x[0, 0] * 255, images[0])
    assert len(load_dataset(str(tmp_path))) == 7  # the folder holding the files
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx(images)[:-5])
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(labels))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: the header promises \(7, 28, 28\) values"):
        load_dataset(str(tmp_path / "t10k-images-idx3-ubyte"))


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar10_batches_and_a_tampered_pickle(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (4, 3072), dtype=np.uint8)
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"data": data, b"labels": [3, 1, 4, 1]}, f)
    ds = load_dataset(str(tmp_path))
    assert ds.x.shape == (4, 3, 32, 32) and ds.classes[3] == "cat" and list(ds.y) == [3, 1, 4, 1]
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, f)
    with pytest.raises(DataError, match=r"test_batch: not a CIFAR-10 python batch \(refusing to load builtins.print\)"):
        load_dataset(str(tmp_path))
    for labels, said in ((["a", "b", "c", "d"], "must be class ids 0-9"), ([3, 1, 12, 1], "it holds 1 to 12")):
        with open(tmp_path / "test_batch", "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
        with pytest.raises(DataError, match=f"test_batch: the 'labels' entry .*{said}"):
            load_dataset(str(tmp_path))


def test_mismatched_arrays_are_refused():
    with pytest.raises(DataError, match=r"data set 'bad': 3 inputs but 2 targets"):
        Dataset("bad", np.zeros((3, 2)), np.zeros(2), "classification")
