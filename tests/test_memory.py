"""Field files: round trip, and every hostile input refused without touching the model."""

import json
import struct

import pytest
import torch
from safetensors.torch import save

from lokiserve.memory import (
    FORMAT,
    FieldBackboneError,
    FieldContentError,
    FieldError,
    FieldFormatError,
    FieldTooLargeError,
    field_to_bytes,
    read_field,
    write_field,
)


def raw_file(header: dict, body: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


def good_tensors(model, name="beta"):
    return {k: v.clone() for k, v in model.export_field(name).tensors().items()}


def meta(model, **over):
    m = {"format": FORMAT, "name": "beta", "backbone": model.backbone_hash()}
    m.update(over)
    return m


def test_round_trip_path_and_bytes(model, tmp_path):
    field = model.export_field("beta", description="test", source="unit")
    path = write_field(field, tmp_path / "beta.safetensors")
    for source in (path, str(path), path.read_bytes()):
        back = read_field(source)
        assert back.name == "beta" and back.backbone == field.backbone
        assert back.metadata["description"] == "test"
        assert back.sha256() == field.sha256()
        for k, v in field.tensors().items():
            assert torch.equal(back.tensors()[k], v)


def test_written_file_is_plain_safetensors(model, tmp_path):
    from safetensors import safe_open

    path = write_field(model.export_field(0), tmp_path / "f.safetensors")
    with safe_open(str(path), "pt") as f:
        assert set(f.keys()) == {"layers.0.keys", "layers.0.values", "layers.1.keys", "layers.1.values"}
        assert f.metadata()["format"] == FORMAT


def hostile_cases(model):
    """(label, bytes, expected error class, words in the message)."""
    good = field_to_bytes(model.export_field("beta"))
    t = good_tensors(model)
    huge_header = struct.pack("<Q", 50 * (1 << 30)) + b"{}"
    nan = dict(t)
    nan["layers.0.keys"] = nan["layers.0.keys"].clone()
    nan["layers.0.keys"][3, 2] = float("nan")
    inf = dict(t)
    inf["layers.1.values"] = inf["layers.1.values"].clone()
    inf["layers.1.values"][0, 0] = float("inf")
    wrong_dtype = dict(t)
    wrong_dtype["layers.0.values"] = wrong_dtype["layers.0.values"].half()
    int_dtype = dict(t)
    int_dtype["layers.0.values"] = torch.zeros(16, 16, dtype=torch.int32)
    extra = dict(t)
    extra["layers.0.bias"] = torch.zeros(16)
    extra_layer = dict(t)
    extra_layer["layers.5.keys"] = torch.zeros(16, 16)
    extra_layer["layers.5.values"] = torch.zeros(16, 16)
    missing = dict(t)
    del missing["layers.1.values"]
    missing_pair = dict(t)
    del missing_pair["layers.1.values"], missing_pair["layers.1.keys"]
    shape = dict(t)
    shape["layers.0.keys"] = torch.zeros(16, 15)  # d_k mismatch
    shape3 = dict(t)
    shape3["layers.0.keys"] = torch.zeros(16, 16, 1)
    overlap_header = {
        "__metadata__": meta(model),
        "layers.0.keys": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "layers.0.values": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]},
    }
    lying_offsets = {
        "__metadata__": meta(model),
        "layers.0.keys": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 16]},
    }
    return [
        ("empty", b"", FieldFormatError, "truncated"),
        ("seven bytes", good[:7], FieldFormatError, "truncated"),
        ("truncated header", good[:40], FieldFormatError, "truncated"),
        ("truncated data", good[:-100], FieldFormatError, "truncated"),
        ("header bomb", huge_header, FieldFormatError, "header claims"),
        ("not json", struct.pack("<Q", 5) + b"hello", FieldFormatError, "JSON"),
        ("json list", raw_file([1, 2]), FieldFormatError, "object"),  # type: ignore[arg-type]
        ("no metadata", save(t), FieldFormatError, "__metadata__"),
        ("wrong format", save(t, metadata=meta(model, format="lokiserve.field/9")), FieldFormatError, "format"),
        ("no backbone", save(t, metadata={"format": FORMAT, "name": "x"}), FieldFormatError, "backbone"),
        ("nan", save(nan, metadata=meta(model)), FieldContentError, "NaN"),
        ("inf", save(inf, metadata=meta(model)), FieldContentError, "NaN or Inf"),
        ("fp16", save(wrong_dtype, metadata=meta(model)), FieldContentError, "dtype"),
        ("int32", save(int_dtype, metadata=meta(model)), FieldContentError, "dtype"),
        ("extra tensor", save(extra, metadata=meta(model)), FieldContentError, "unexpected tensor"),
        ("missing values", save(missing, metadata=meta(model)), FieldContentError, "keys without values"),
        ("overlap", raw_file(overlap_header, bytes(24)), FieldFormatError, "overlap"),
        ("offsets lie", raw_file(lying_offsets, bytes(16)), FieldFormatError, "data_offsets span"),
        ("rank 3", save(shape3, metadata=meta(model)), FieldContentError, "shape"),
    ], [
        # Structurally fine files that do not fit this model.
        ("wrong backbone", save(t, metadata=meta(model, backbone="0" * 64)), FieldBackboneError, "backbone"),
        ("wrong shape", save(shape, metadata=meta(model)), FieldContentError, "shape"),
        ("extra layer", save(extra_layer, metadata=meta(model)), FieldContentError, "unexpected tensors"),
        ("missing layer", save(missing_pair, metadata=meta(model)), FieldContentError, "missing tensors"),
    ]


def test_every_hostile_file_raises_field_error_and_model_is_untouched(model):
    x = torch.randint(0, 97, (2, 8))
    before = model(x).logits
    unreadable, incompatible = hostile_cases(model)
    for label, data, error, words in unreadable:
        with pytest.raises(error, match=words):
            read_field(data)
    for label, data, error, words in incompatible:
        field = read_field(data)
        with pytest.raises(error, match=words):
            model.apply_field("beta", field)
    assert torch.equal(before, model(x).logits)
    assert all(issubclass(case[2], FieldError) and issubclass(case[2], ValueError) for case in unreadable)


def test_oversized_file_refused_before_reading(model, tmp_path):
    path = write_field(model.export_field(0), tmp_path / "f.safetensors")
    with pytest.raises(FieldTooLargeError, match="over the"):
        read_field(path, max_bytes=100)
    with pytest.raises(FieldTooLargeError):
        read_field(path.read_bytes(), max_bytes=100)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(FieldFormatError, match="cannot read"):
        read_field(tmp_path / "nope.safetensors")
    with pytest.raises(FieldFormatError, match="not a regular file"):
        read_field(tmp_path)


def test_apply_validates_every_layer_before_writing_any(model):
    """A field whose last layer is bad must not have written its first layer."""
    x = torch.randint(0, 97, (1, 8))
    before = model(x).logits
    field = model.export_field("alpha")
    field.keys[0] = torch.randn(16, 16)
    field.values[1] = torch.full((16, 16), float("nan"))
    with pytest.raises(FieldContentError, match="NaN"):
        model.apply_field("alpha", field)
    assert torch.equal(before, model(x).logits)


def test_empty_field_applies_as_zeroed(model):
    field = model.export_field("alpha")
    for t in field.tensors().values():
        t.zero_()
    model.apply_field("alpha", field)
    assert model.field_state("alpha") == "zeroed"
    assert model.export_field("alpha").is_empty()


def test_field_checksum_ignores_metadata(model):
    a = model.export_field("beta", description="one")
    b = model.export_field("beta", description="two")
    assert a.sha256() == b.sha256()
    model.zero_field("beta")
    assert model.export_field("beta").sha256() != a.sha256()


def test_keys_and_values_slot_counts_must_agree(model):
    t = good_tensors(model)
    t["layers.0.keys"] = torch.zeros(15, 16)
    with pytest.raises(FieldContentError, match="15 keys but 16 values"):
        read_field(save(t, metadata=meta(model)))


@pytest.mark.parametrize("field_id", ["\u0661", "\u00b2", "9" * 5000, "3", "-1", ""])
def test_an_index_is_a_short_ascii_digit_string(field_id):
    """'١' and '²' pass str.isdigit() (int('١') is 1); a 5000-digit id fails int(): none is an index."""
    from lokiserve.memory import resolve_field_id

    with pytest.raises(KeyError):
        resolve_field_id(["alpha", "beta", "gamma"], field_id)
    assert resolve_field_id(["alpha", "beta", "gamma"], "2") == 2
