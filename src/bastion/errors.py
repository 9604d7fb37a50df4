"""The exception tree. User mistakes in configuration are `Diagnostic`s, not exceptions; these are
for the boundary: what the CLI reports when it cannot do what was asked.

    BastionError
    ├── InputError        the user's input cannot be read (malformed YAML, missing file)
    └── ServerUnavailable the control plane's local API cannot be reached

Refusals by admission, missing objects and conflicts travel as answers of the local API (one
line each), not as exceptions.
"""


class BastionError(Exception):
    """Base of every error bastion reports to a user."""


class InputError(BastionError):
    pass


class ServerUnavailable(BastionError):
    pass
