"""Status codes and the exceptions that carry them."""

from __future__ import annotations

from typing import Optional, Union

from ._pb import pb

# "NOT_FOUND" <-> 5, from the contract's Code enum (CODE_ prefix dropped).
CODE_NAMES = {v.number: v.name[len("CODE_"):] for v in pb.Code.DESCRIPTOR.values}
CODE_NUMBERS = {name: num for num, name in CODE_NAMES.items()}
STATE_NAMES = {v.number: v.name[len("STATE_"):] for v in pb.State.DESCRIPTOR.values}


def code_name(code: int) -> str:
    return CODE_NAMES.get(code, "CODE_%d" % code)


class Error(Exception):
    """A non-OK reply from the broker. ``code`` is the status name ("NOT_FOUND"),
    ``message`` the broker's human-readable message."""

    code = "UNKNOWN"

    def __init__(self, message: str = "", code: Optional[str] = None) -> None:
        if code is not None:
            self.code = code
        self.message = message
        super().__init__("%s: %s" % (self.code, message) if message else self.code)


class Cancelled(Error):
    code = "CANCELLED"


class Unknown(Error):
    code = "UNKNOWN"


class InvalidArgument(Error):
    code = "INVALID_ARGUMENT"


class DeadlineExceeded(Error):
    code = "DEADLINE_EXCEEDED"


class NotFound(Error):
    code = "NOT_FOUND"


class AlreadyExists(Error):
    code = "ALREADY_EXISTS"


class PermissionDenied(Error):
    code = "PERMISSION_DENIED"


class ResourceExhausted(Error):
    code = "RESOURCE_EXHAUSTED"


class FailedPrecondition(Error):
    code = "FAILED_PRECONDITION"


class Aborted(Error):
    code = "ABORTED"


class OutOfRange(Error):
    code = "OUT_OF_RANGE"


class Unimplemented(Error):
    code = "UNIMPLEMENTED"


class Internal(Error):
    code = "INTERNAL"


class Unavailable(Error):
    code = "UNAVAILABLE"


class DataLoss(Error):
    code = "DATA_LOSS"


class Unauthenticated(Error):
    code = "UNAUTHENTICATED"


class Timeout(Error):
    """No reply from the broker within the client's timeout (a client-side
    condition, not a status code sent by the broker)."""

    code = "TIMEOUT"


class ProtocolError(Error):
    """The broker's reply did not have the expected shape."""

    code = "PROTOCOL"


_BY_CODE = {cls.code: cls for cls in (
    Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
    PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
    Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated)}


def error_for(code: int, message: str) -> Error:
    """The exception for a non-OK code number."""
    name = code_name(code)
    cls = _BY_CODE.get(name, Error)
    return cls(message, code=name)


class JobFailed(Exception):
    """Raised by a worker job function to fail its task with a chosen code
    (a name like "INVALID_ARGUMENT" or a number) and retryability."""

    def __init__(self, code: Union[str, int] = "UNKNOWN", message: str = "", retryable: bool = False) -> None:
        if isinstance(code, str):
            name = code.upper()
            if name.startswith("CODE_"):
                name = name[len("CODE_"):]
            if name not in CODE_NUMBERS:
                raise ValueError("unknown status code %r" % code)
            code = CODE_NUMBERS[name]
        self.code: int = int(code)
        self.message = message
        self.retryable = bool(retryable)
        super().__init__("%s: %s" % (code_name(self.code), message))
