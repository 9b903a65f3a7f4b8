"""One exception family for the whole package.

Every error that reaches a user says *what* was wrong, *where* (file, line or key,
topic, parameter) and, when there is a closed set, *what is accepted*.  The CLI turns
any :class:`SitebotError` into one line on stderr and a non-zero exit, never a
traceback.
"""
from __future__ import annotations

from pathlib import Path

__all__ = [
    "SitebotError",
    "ConfigError",
    "RegistryError",
    "WorldError", "BundleError",
    "UrdfError",
    "LaunchError",
    "ParameterError",
    "SimulationError",
]


class SitebotError(Exception):
    """Base class of every error the project raises on purpose."""


class ConfigError(SitebotError):
    """A data file (YAML, URDF, launch, parameters) is malformed or inconsistent.

    :param message: what is wrong, and what is accepted.
    :param file: the file, if known.
    :param where: a line number (int) or a key path such as ``assets[3].place``.
    """

    def __init__(self, message: str, file: str | Path | None = None,
                 where: int | str | None = None) -> None:
        # text from a hostile file (a key with a NUL or an escape sequence) is shown escaped
        self.message = _escaped(message, keep="\n\t")
        self.file = _escaped(str(file)) if file is not None else None
        self.where = _escaped(where) if isinstance(where, str) else where
        super().__init__(self.__str__())

    def __str__(self) -> str:
        loc = ""
        if self.file:
            loc = self.file
            if isinstance(self.where, int):
                loc += f":{self.where}"
            elif self.where:
                loc += f": {self.where}"
        elif self.where is not None:
            loc = str(self.where)
        return f"{loc}: {self.message}" if loc else self.message


def _escaped(text: str, keep: str = "") -> str:
    """*text* with each character that is not printable (NUL, control and format
    characters, lone surrogates), apart from those in *keep*, as a Python escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


class RegistryError(ConfigError):
    """A site registry file breaks the schema of the design brief."""


class WorldError(ConfigError):
    """A world (scene) file cannot be loaded into the simulator."""


class BundleError(ConfigError):
    """A site bundle (map, registry, markers, scene, start poses) is missing or malformed."""


class UrdfError(ConfigError):
    """A robot description (URDF or xacro) is malformed or physically unusable."""


class LaunchError(ConfigError):
    """A launch file uses an unknown tag/attribute or cannot be resolved."""


class ParameterError(SitebotError):
    """A node parameter has the wrong type or lies outside its accepted range."""


class SimulationError(SitebotError):
    """The simulator was asked for something it cannot do (unknown robot, bad state)."""
