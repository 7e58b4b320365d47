"""The one exception type a user sees as a one-line message and a non-zero exit."""


class WorkflowError(Exception):
    """Input or state the user must fix: the message names what is wrong and how to fix it.

    Steps raise it *before* any registry write, so a failing step leaves the registry as it was.
    """


class ConfigError(WorkflowError):
    """A config file or ``-P key=value`` override that cannot be used."""
