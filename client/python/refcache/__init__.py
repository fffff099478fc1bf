"""refcache from Python: a client (sync and asyncio) and a worker that speak
the protobuf contract in proto/refcache.proto."""

from .errors import (Error, Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound,
                     AlreadyExists, PermissionDenied, ResourceExhausted, FailedPrecondition,
                     Aborted, OutOfRange, Unimplemented, Internal, Unavailable, DataLoss,
                     Unauthenticated, Timeout, ProtocolError, JobFailed)
from ._messages import Task, Page
from .client import Client, DEFAULT_ENDPOINT
from .aio import AsyncClient
from .worker import Worker, Job
from ._pb import pb
from ._version import __version__

__all__ = [
    "Client", "AsyncClient", "Worker", "Job", "Task", "Page", "DEFAULT_ENDPOINT", "pb",
    "Error", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
    "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
    "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
    "Timeout", "ProtocolError", "JobFailed", "__version__",
]
