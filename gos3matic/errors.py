"""The failures a run can end with, each mapped to one exit code by the CLI."""


class InputError(ValueError):
    """Bad input: refused before any request (exit 2)."""


class EnvironmentProblem(RuntimeError):
    """Credentials, endpoint or bucket unusable before any write (exit 3)."""


class EndpointUnreachable(EnvironmentProblem):
    """The endpoint's host name does not resolve, or TLS with it fails: no retry can fix that."""


class S3Error(Exception):
    """An error answer from the S3 service, independent of the client library that got it."""

    def __init__(self, code: str, message: str = "", status: int = 0, operation: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status
        self.operation = operation


class NetworkError(Exception):
    """The request got no answer: connection refused or reset, timeout, reply lost."""


# HEAD answers carry no error body, only a status: the code boto3 would name for it.
_STATUS_CODES = {
    "400": "BadRequest",
    "403": "AccessDenied",
    "404": "NotFound",
    "412": "PreconditionFailed",
}


def code_for_status(code: str) -> str:
    """An error code as boto3 reports it: a bare status of a body-less answer gets its name."""
    return _STATUS_CODES.get(code, code)
