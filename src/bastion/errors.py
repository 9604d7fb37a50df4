"""The exception tree, which says whose fault it was. User mistakes in configuration are
`Diagnostic`s (data), not exceptions; these are for the boundaries.

    BastionError
    ├── UserError            the caller asked for something that cannot be done; said in one line
    │   ├── InputError       the user's input cannot be read (malformed YAML, missing file)
    │   ├── CredentialError  a Secret cannot serve as a credential (names the Secret and why)
    │   ├── Conflict         the object exists (create) or does not (delete, get)
    │   └── BadRequest       a local API request is malformed (not JSON, a field missing)
    ├── PeerError            the other end broke a protocol
    │   └── ProtocolError    a gateway broke xDS; its stream is closed with this message
    ├── Unavailable          a part bastion needs cannot be reached
    │   └── ServerUnavailable  the control plane's local API (from the CLI)
    └── InternalError        a bug in bastion: logged with its traceback, never blamed on input

The local API answers a `UserError` with its message, and anything else with "internal error"
plus a logged traceback (see `bastion.server.api`).
"""


class BastionError(Exception):
    """Base of every error bastion raises on purpose."""


class UserError(BastionError):
    pass


class InputError(UserError):
    pass


class CredentialError(UserError):
    """A credential that cannot be used; the message names the secret and the reason."""


class CredentialNotFound(CredentialError):
    """No Secret of the name in the namespace looked in (told apart: `analyze` says where one
    of that name is)."""


class Conflict(UserError):
    pass


class BadRequest(UserError):
    pass


class PeerError(BastionError):
    pass


class ProtocolError(PeerError):
    """The client broke the protocol; the stream should be closed with this message."""


class Unavailable(BastionError):
    pass


class ServerUnavailable(Unavailable):
    pass


class InternalError(BastionError):
    pass
