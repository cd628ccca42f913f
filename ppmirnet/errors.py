"""Errors that describe a user mistake (bad file, bad config, bad argument).

Command-line tools catch :class:`UserError` and print its message without a
traceback (see :func:`ppmirnet.cli.run_tool`); anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """A problem the user can fix; the message says what and where."""


class ConfigError(UserError):
    """An invalid configuration file or override."""


class ConversionError(UserError):
    """A checkpoint that does not fit the model it is converted for."""


class MissingDependencyError(UserError):
    """An optional package needed for this feature is not installed."""
