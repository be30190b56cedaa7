"""What the gateway configuration's models share: the error, the base model, file paths.

Every part of the config is a frozen pydantic model that refuses unknown keys, so a typo is an
error naming its field rather than a setting silently left at its default. Paths are relative
to the configuration file's folder (passed as ``base`` in the validation context), so a config
and its files travel together.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

from tiergate.errors import TiergateError


class ConfigError(TiergateError, ValueError):
    """A configuration that cannot be served; the message names the file and the field."""


class Section(BaseModel):
    """A part of the config: read-only once loaded, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def context_of(info: ValidationInfo) -> dict[str, Any]:
    return info.context if isinstance(info.context, dict) else {}


def _beside_the_config(value: Path, info: ValidationInfo) -> Path:
    path = Path(os.path.expanduser(str(value)))
    base = context_of(info).get("base")
    return path if path.is_absolute() or base is None else Path(base) / path


# A path in the config file: ``~`` expanded, relative ones taken from the file's folder.
ConfigPath = Annotated[Path, AfterValidator(_beside_the_config)]
