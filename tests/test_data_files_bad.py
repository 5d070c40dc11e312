"""The user's own data files when they are damaged or hold values no network can train on: a clean
``DataError`` naming the file (and the array, or the CSV column and line), never a traceback, and never a
run that fails at its first step."""

import io
import zipfile

import numpy as np
import pytest

from engine.training import DataError, load_dataset


def _xy(n=30, features=4):
    x = np.random.default_rng(0).normal(size=(n, features)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(path)


# --------------------------------------------------------------------------- unreadable NumPy files
def test_a_truncated_npz_is_not_a_zip(tmp_path):
    x, y = _xy()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    raw = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(DataError, match=r"cut.npz: not a readable NumPy file \(File is not a zip file\)"):
        load_dataset(str(tmp_path / "cut.npz"))


def test_an_npz_of_object_arrays_names_the_array(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([[1.0, 2.0], [3.0]], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"obj.npz: not a readable NumPy file \(array 'x': Object arrays cannot be "
                                        r"loaded when allow_pickle=False\)"):
        load_dataset(str(tmp_path / "obj.npz"))


def test_a_damaged_member_of_an_npz_names_the_array(tmp_path):
    x, y = _xy()
    truncated = _zip(tmp_path / "short.npz", {"x.npy": _npy_bytes(x)[:200], "y.npy": _npy_bytes(y)})
    with pytest.raises(DataError, match=r"short.npz: not a readable NumPy file \(array 'x': .*expected \d+ bytes"):
        load_dataset(truncated)
    # a flipped byte: the stored member fails its CRC, the compressed one fails to inflate or its CRC
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        path = tmp_path / f"flip{compression}.npz"
        _zip(path, {"x.npy": _npy_bytes(x), "y.npy": _npy_bytes(y)}, compression)
        raw = bytearray(path.read_bytes())
        for i in range(120, 160):  # inside the x.npy member, past the zip's local header
            raw[i] ^= 0x5A
        path.write_bytes(bytes(raw))
        with pytest.raises(DataError, match=rf"flip{compression}.npz: not a readable NumPy file \(array 'x': "):
            load_dataset(str(path))
    raw_bytes = _zip(tmp_path / "raw.npz", {"x.npy": b"hello, not numpy", "y.npy": _npy_bytes(y)})
    with pytest.raises(DataError, match=r"raw.npz: not a readable NumPy file \(array 'x' is not a NumPy array\)"):
        load_dataset(raw_bytes)


def test_wrong_dtypes_and_shapes_in_an_npz_name_the_array(tmp_path):
    x, y = _xy(3, 2)
    cases = {
        "text_x": (dict(inputs=np.array([["a", "b"]] * 3), y=y), {},
                   r"the inputs \(array 'inputs'\) must be numbers, got dtype <U1"),
        "complex_y": (dict(x=x, labels=np.array([1j, 2, 3])), {},
                      r"the targets \(array 'labels'\) must be numbers or text labels, got dtype complex128"),
        "dates_y": (dict(x=x, y=np.array(["2020-01-01"] * 3, dtype="M8[D]")), {},
                    r"the targets \(array 'y'\) must be numbers or text labels, got dtype datetime64"),
        "text_regressed": (dict(x=x, y=np.array(["a", "b", "c"])), {"task": "regression"},
                           r"the targets \(array 'y'\) are text, so they cannot be regressed"),
        "scalar_y": (dict(x=x, y=np.array(5.0)), {}, r"array 'y' holds a single value"),
    }
    for name, (arrays, options, message) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(DataError, match=rf"{name}.npz: {message}"):
            load_dataset(str(tmp_path / f"{name}.npz"), options)
    np.save(tmp_path / "single.npz.npy", x)
    (tmp_path / "single.npz").write_bytes((tmp_path / "single.npz.npy").read_bytes())
    with pytest.raises(DataError, match=r"single.npz: holds a single array, not an .npz archive"):
        load_dataset(str(tmp_path / "single.npz"))
    np.savez(tmp_path / "pair.npz", x=x, y=y)
    (tmp_path / "pair.npy").write_bytes((tmp_path / "pair.npz").read_bytes())
    with pytest.raises(DataError, match=r"pair.npy: holds several arrays \(an .npz archive\); name it .npz"):
        load_dataset(str(tmp_path / "pair.npy"))


# --------------------------------------------------------------------------- NaN and infinity
def test_nan_and_inf_in_npz_inputs_or_targets_are_refused_at_the_first_one(tmp_path):
    x, y = _xy()
    bad = x.copy()
    bad[12, 3], bad[20, 1] = np.nan, np.inf
    np.savez(tmp_path / "nan_x.npz", x=bad, y=y)
    with pytest.raises(DataError, match=r"nan_x.npz: x\[12, 3\] is nan; NaN and infinite values cannot be trained"):
        load_dataset(str(tmp_path / "nan_x.npz"))
    values = x[:, 1].astype(np.float64) * 3.7
    values[7] = -np.inf
    np.savez(tmp_path / "inf_y.npz", features=x, targets=values)  # regression
    with pytest.raises(DataError, match=r"inf_y.npz: targets\[7\] is -inf"):
        load_dataset(str(tmp_path / "inf_y.npz"))
    labels = y.astype(np.float64)
    labels[4] = np.nan
    np.savez(tmp_path / "nan_label.npz", x=x, y=labels)
    with pytest.raises(DataError, match=r"nan_label.npz: y\[4\] is nan"):
        load_dataset(str(tmp_path / "nan_label.npz"), {"task": "classification"})
    images = np.zeros((6, 1, 5, 5), np.float32)
    images[2, 0, 3, 4] = np.nan
    np.savez(tmp_path / "images.npz", x=images, y=np.arange(6) % 2)
    with pytest.raises(DataError, match=r"images.npz: x\[2, 0, 3, 4\] is nan"):
        load_dataset(str(tmp_path / "images.npz"))
    huge = x.astype(np.float64)
    huge[5, 0] = 1e300  # finite in the file, infinite as the float32 the network trains on
    np.savez(tmp_path / "huge.npz", x=huge, y=y)
    with pytest.raises(DataError, match=r"huge.npz: x\[5, 0\] is 1e\+300, too large for 32-bit floats"):
        load_dataset(str(tmp_path / "huge.npz"))


def test_nan_and_inf_in_an_npy_table_name_its_row_and_column(tmp_path):
    x, _ = _xy()
    table = np.column_stack([x, x[:, 0] * 2.5])
    table[9, 2] = np.nan
    np.save(tmp_path / "t.npy", table)
    with pytest.raises(DataError, match=r"t.npy: row 9, column 2 is nan"):
        load_dataset(str(tmp_path / "t.npy"))
    with pytest.raises(DataError, match=r"t.npy: row 9, column 2 is nan"):  # the file's column, not x's (1)
        load_dataset(str(tmp_path / "t.npy"), {"target": 0})
    table[9, 2] = 0.0
    table[11, 4] = np.inf
    np.save(tmp_path / "t.npy", table)
    with pytest.raises(DataError, match=r"t.npy: row 11, column 4 \(the target\) is inf"):
        load_dataset(str(tmp_path / "t.npy"))


def test_finite_arrays_still_load_and_integer_and_uint8_data_pass(tmp_path):
    x, y = _xy(200, 3)
    np.savez(tmp_path / "ok.npz", x=x.astype(np.float64), y=x[:, 0] * 2.0)
    ds = load_dataset(str(tmp_path / "ok.npz"))
    assert ds.task == "regression" and ds.x.dtype == np.float32 and np.isfinite(ds.x).all()
    np.savez(tmp_path / "u8.npz", x=np.full((10, 1, 4, 4), 255, np.uint8), y=np.arange(10) % 2)
    assert load_dataset(str(tmp_path / "u8.npz")).x.max() == 1.0
    np.savez(tmp_path / "ints.npz", x=np.arange(20).reshape(10, 2), y=np.arange(10) % 2)
    assert load_dataset(str(tmp_path / "ints.npz")).x.dtype.kind == "i"


def test_the_finite_check_finds_the_first_bad_value_across_blocks():
    from engine.training.files import _non_finite_at

    big = np.zeros((3_000, 2_000), np.float32)  # 6M values: more than one block of rows
    assert _non_finite_at(big) is None
    big[2_500, 1_234] = np.inf
    big[2_999, 0] = np.nan
    assert _non_finite_at(big) == (2_500, 1_234)
    big[0, 1_999] = np.nan
    assert _non_finite_at(big) == (0, 1_999)
    assert _non_finite_at(np.zeros((0, 3), np.float32)) is None
    assert _non_finite_at(np.full((4, 4), 7, np.int64)) is None


# --------------------------------------------------------------------------- CSV
@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-inf", "Infinity", "1e39"])
def test_a_non_finite_csv_cell_names_its_column_and_line(tmp_path, cell):
    path = tmp_path / "rows.csv"
    path.write_text(f"a,b,kind\n1,2,0\n3,4,1\n5,{cell},0\n7,8,1\n")
    with pytest.raises(DataError, match=rf"rows.csv: column 'b' holds '{cell}' on line 4, which is (not a finite "
                                        r"number|too large for 32-bit floats)"):
        load_dataset(str(path))


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf", "1e39"])
def test_a_non_finite_csv_target_names_its_column_and_line(tmp_path, cell):
    path = tmp_path / "values.csv"
    path.write_text("a,b,price\n" + "".join(f"{i},{i * i},{i * 0.37:.2f}\n" for i in range(40))
                    + f"1,2,{cell}\n")
    with pytest.raises(DataError, match=rf"values.csv: the target column 'price' holds '{cell}' on line 42"):
        load_dataset(str(path))


def test_a_csv_target_that_is_nan_among_class_numbers_or_empty_is_refused(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,nan\n")
    with pytest.raises(DataError, match=r"classes.csv: the target column 'label' holds 'nan' on line 4"):
        load_dataset(str(path), {"task": "classification"})
    path.write_text("a,b,label\n1,2,0.5\n3,4,\n5,6,1.5\n")  # was taken as a text class ''
    with pytest.raises(DataError, match=r"classes.csv: the target column 'label' is empty on line 3"):
        load_dataset(str(path))
    path.write_text("a,b,name\n1,2,Ann\n3,4,Nan\n5,6,Bob\n")  # text classes: 'Nan' is a name, not a number
    assert load_dataset(str(path)).classes == ["Ann", "Bob", "Nan"]


def test_a_file_that_is_not_numpy_at_all_is_named_as_such(tmp_path):
    """Anything that does not begin as an .npy or .npz does was taken by NumPy for a pickle, and the
    message said to load it unsafely."""
    for name in ("junk.npy", "junk.npz"):
        path = tmp_path / name
        path.write_bytes(bytes(range(256)) * 3)
        with pytest.raises(DataError) as err:
            load_dataset(str(path))
        assert str(err.value).startswith(f"{path}: not a NumPy file: it does not begin as an .npy or .npz")
        assert "pickle" not in str(err.value)


def test_csv_messages_name_the_files_own_line(tmp_path):
    """Blank lines and a quoted cell over two lines do not shift the line a message names."""
    path = tmp_path / "gaps.csv"
    path.write_text('a,b,label\n1,2,x\n\n3,"4",y\n"5\n",6,x\n7,oops,y\n')
    with pytest.raises(DataError) as err:
        load_dataset(str(path))
    assert "column 'b' holds 'oops' on line 7" in str(err.value)
