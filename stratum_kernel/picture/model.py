"""The generator's ``models/meta.json``: what the ONNX file is and how to steer it.

meta.json is the contract between ``training/`` (which writes it on export) and the
renderer (which reads it): latent and output shapes, the output value range, the ONNX
file and its sha256, named anchor latents and PCA axes in latent space. It is validated
on load; an ONNX file whose sha256 differs from meta.json is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stratum_kernel.core.digests import file_sha256
from stratum_kernel.core.errors import ConfigError, ModelError
from stratum_kernel.core.schema import read_json, validation_error

META_FORMAT = "stratum-generator/1"


class OnnxRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str = "generator.onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    opset: int = Field(ge=18)
    input: str = "z"
    output: str = "image"


class WeightsRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ModelMeta(BaseModel):
    """The validated contents of meta.json."""

    model_config = ConfigDict(extra="allow")

    format: str = META_FORMAT
    name: str
    version: str
    latent_shape: tuple[int, int, int] = (8, 16, 16)
    output_shape: tuple[int, int, int]
    output_range: tuple[float, float] = (-1.0, 1.0)
    onnx: OnnxRef
    # more ONNX files of the same weights stopped at a lower stage, by their size:
    # {"128": {...}} lets a model trained to 256² decode 128² drafts (decoder.head)
    heads: dict[int, OnnxRef] = Field(default_factory=dict)
    weights: WeightsRef | None = None
    checkpoint: str | None = None
    architecture: dict = Field(default_factory=dict)
    training: dict = Field(default_factory=dict)
    latent_scale: float = Field(default=1.0, gt=0)
    anchors: dict[str, list[float]] = Field(min_length=1)
    pca_axes: list[list[float]] = Field(default_factory=list)
    pca_strength: list[float] = Field(default_factory=list)

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        if v != META_FORMAT:
            raise ValueError(f"unknown format {v!r}; expected {META_FORMAT!r}")
        return v

    @field_validator("output_shape")
    @classmethod
    def _rgb(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if v[0] != 3 or v[1] < 8 or v[2] < 8:
            raise ValueError(f"expected [3, H, W] with H, W >= 8, got {list(v)}")
        return v

    def latent_size(self) -> int:
        c, h, w = self.latent_shape
        return c * h * w


@dataclass(frozen=True)
class GeneratorModel:
    """A loaded model description: the meta plus arrays ready for the controller.

    anchors: name -> float32 [8, 16, 16]; pca_axes: float32 [K, 8, 16, 16], unit norm,
    ordered by how much they change the image (K may be 0).
    """

    directory: Path
    meta: ModelMeta
    onnx_path: Path
    anchors: dict[str, np.ndarray]
    pca_axes: np.ndarray

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.meta.latent_shape

    @property
    def head_sizes(self) -> tuple[int, ...]:
        """Square output sizes this model can decode: its own and any extra heads."""
        return tuple(sorted({self.meta.output_shape[1], *self.meta.heads}))

    def head(self, size: int | None = None) -> tuple[Path, tuple[int, int]]:
        """(ONNX file, (height, width)) of the head decoding ``size``² frames (None: the
        model's own output). A ModelError names the sizes there are."""
        if size is None or size == self.meta.output_shape[1]:
            return self.onnx_path, self.image_size
        if size not in self.meta.heads:
            raise ModelError(
                f"{self.directory / 'meta.json'}: no {size}² head; this model decodes "
                f"{', '.join(f'{s}²' for s in self.head_sizes)} (decoder.head in render.yaml)"
            )
        return self.directory / self.meta.heads[size].file, (size, size)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the generator's square-ish output."""
        return self.meta.output_shape[1], self.meta.output_shape[2]


def load_model(models_dir: str | Path, *, verify: bool = True) -> GeneratorModel:
    """Read and validate ``<models_dir>/meta.json`` and locate the ONNX file.

    With ``verify`` the ONNX file's sha256 must match meta.json. Raises
    :class:`~stratum_kernel.core.errors.ModelError` naming the file and field otherwise.
    """
    models_dir = Path(models_dir)
    meta_path = models_dir / "meta.json"
    if not meta_path.is_file():
        raise ModelError(
            f"{meta_path}: no model metadata found; point --model-dir at a folder with "
            "meta.json and generator.onnx (or run training/export_onnx.py)"
        )
    try:
        raw = read_json(meta_path, "model description")
    except ConfigError as err:
        raise ModelError(str(err)) from None
    try:
        meta = ModelMeta.model_validate(raw)
    except ValidationError as err:
        raise ModelError(str(validation_error(meta_path, err, ModelMeta))) from None

    size = meta.latent_size()
    anchors = {}
    for name, values in meta.anchors.items():
        if len(values) != size:
            raise ModelError(
                f"{meta_path}: field 'anchors.{name}' has {len(values)} values, "
                f"expected {size} (latent shape {list(meta.latent_shape)})"
            )
        anchors[name] = np.asarray(values, dtype=np.float32).reshape(meta.latent_shape)
    for i, axis in enumerate(meta.pca_axes):
        if len(axis) != size:
            raise ModelError(
                f"{meta_path}: field 'pca_axes[{i}]' has {len(axis)} values, expected {size}"
            )
    pca = np.asarray(meta.pca_axes, dtype=np.float32).reshape((-1, *meta.latent_shape))

    refs = [("onnx", meta.onnx), *((f"heads.{k}", ref) for k, ref in meta.heads.items())]
    for field, ref in refs:
        path = models_dir / ref.file
        if Path(ref.file).name != ref.file:
            raise ModelError(
                f"{meta_path}: field '{field}.file' must be a plain file name, got {ref.file!r}"
            )
        if not path.is_file():
            raise ModelError(f"{path}: the model file named in meta.json ({field}) is missing")
        if verify:
            actual = file_sha256(path)
            if actual != ref.sha256:
                raise ModelError(
                    f"{path}: sha256 {actual[:12]}… does not match meta.json field "
                    f"'{field}.sha256' ({ref.sha256[:12]}…): the model file is corrupt or "
                    "belongs to another export; re-export it with training/export_onnx.py"
                )
    onnx_path = models_dir / meta.onnx.file
    return GeneratorModel(models_dir, meta, onnx_path, anchors, pca)
