"""The exception tree. User mistakes in configuration are `Diagnostic`s, not exceptions; these are
for the boundary: what the CLI reports when it cannot do what was asked.

    BastionError
    ├── InputError        the user's input cannot be read (malformed YAML, missing file)
    ├── AdmissionError    an object was refused by admission (carries the one-line reason)
    ├── NotFoundError     a named object or kind does not exist
    ├── ConflictError     create of an object that exists
    └── ServerUnavailable the control plane's local API cannot be reached
"""


class BastionError(Exception):
    """Base of every error bastion reports to a user."""


class InputError(BastionError):
    pass


class AdmissionError(BastionError):
    pass


class NotFoundError(BastionError):
    pass


class ConflictError(BastionError):
    pass


class ServerUnavailable(BastionError):
    pass
