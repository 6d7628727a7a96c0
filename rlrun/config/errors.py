"""The error type for user mistakes in a config: one line, shown without a traceback."""


class ConfigError(ValueError):
    """A config value that is out of range, inconsistent, or names something that does not exist.

    The message names the YAML key, the value and what is allowed, e.g.
    `learners.num must be >= 0 (got -1)`; the CLI prints it as one line and exits 2.
    """
