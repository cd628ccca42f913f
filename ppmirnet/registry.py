"""Name -> class registries: the models, losses, datasets and LR schedules a config can name.

A registry is a plain dict written out by hand next to the classes it holds
(no folder scanning, nothing registered as a side effect of an import), so
adding a kind is adding its class and one line to that dict.
"""

from .errors import ConfigError


def lookup(registry, name, what):
    """``registry[name]``, or a :class:`ConfigError` listing the valid names.

    Args:
        registry (dict): name -> class.
        name (str): the name a config gave.
        what (str): what the names are, for the message (``"loss"``, ``"Arch.name"``).
    """
    if name not in registry:
        raise ConfigError(f"unknown {what} {name!r}; expected one of: {', '.join(registry)}")
    return registry[name]


def build(registry, section, what, **extra):
    """Build the class named by ``section["name"]`` with the section's other keys.

    ``extra`` keyword arguments are passed on as well (what the config does
    not hold: the number of epochs, a logger, ...).
    """
    args = dict(section)
    name = args.pop("name")
    return lookup(registry, name, what)(**args, **extra)
