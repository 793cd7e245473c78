"""Error types that name what is wrong, so the CLI and the app can show them as they are."""


class InfoGenError(ValueError):
    """Base class of every error the core raises about user input."""


class DataError(InfoGenError):
    """The data is unusable: NaN, wrong shape, too few points, unknown dataset."""


class ConfigError(InfoGenError):
    """A setting is out of range or inconsistent (T <= 0, N < 1, unknown variant...)."""


class RunFileError(InfoGenError):
    """A run directory or weights file is missing, corrupt or of an unknown version."""


class CheckpointError(InfoGenError):
    """The file is not a readable InfoGen checkpoint; the message says why (core.checkpoint re-exports it)."""
