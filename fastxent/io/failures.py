"""The storage's own failures as one line each: missing credentials or access denied, a missing
bucket, an unreachable network; told apart by the words of pyarrow's and the cloud SDKs' messages
(the SDKs raise plain ``OSError``), each with what to do.
"""

from __future__ import annotations

import contextlib
import re

from ..errors import InputValueError

#: Where each kind of storage takes its credentials from, for messages.
_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or storage_options "
    "access_key/secret_key",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS, or storage_options",
    "gcs": "GOOGLE_APPLICATION_CREDENTIALS, or storage_options",
    "abfs": "AZURE_STORAGE_ACCOUNT_KEY (or another Azure credential), or storage_options",
    "abfss": "AZURE_STORAGE_ACCOUNT_KEY (or another Azure credential), or storage_options",
}
#: Words of pyarrow's and the cloud SDKs' messages, by what went wrong.
_DENIED = ("ACCESS_DENIED", "AccessDenied", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH",
           "SignatureDoesNotMatch", "ExpiredToken", "EXPIRED_TOKEN", "Forbidden", "Unauthorized",
           "PERMISSION_DENIED", "credentials")  # fmt: skip
_NO_BUCKET = ("NO_SUCH_BUCKET", "NoSuchBucket", "bucket does not exist", "ContainerNotFound")
_NETWORK = ("NETWORK_CONNECTION", "curlCode", "Could not resolve", "Couldn't connect",
            "Connection refused", "timed out", "Timeout", "UNAVAILABLE")  # fmt: skip


def first_line(err: BaseException) -> str:
    """An error's text on one line, without the SDK's request id."""
    text = " ".join(str(err).split())
    return re.sub(r"\s*\(Request ID: [^)]*\)", "", text)


def storage_error(err: BaseException, location, doing: str = "read") -> InputValueError:
    """The storage's own failure at ``location`` (a :class:`~.filesystems.Location`) while it
    was being read or written (``doing``), as one line."""
    text = first_line(err)
    if isinstance(err, FileNotFoundError):
        return InputValueError(f"'{location.name}' does not exist.")
    if isinstance(err, PermissionError) or any(word in text for word in _DENIED):
        where = _CREDENTIALS.get(location.kind, "the credentials of its filesystem")
        return InputValueError(
            f"access to '{location.name}' was denied ({text}): the credentials are missing or may "
            f"not {doing} it; set {where}."
        )
    if any(word in text for word in _NO_BUCKET):
        bucket = location.path.split("/", 1)[0]
        return InputValueError(f"cannot {doing} '{location.name}': there is no bucket '{bucket}' ({text}).")
    if any(word in text for word in _NETWORK):
        return InputValueError(f"cannot reach the storage of '{location.name}' (network): {text}")
    return InputValueError(f"cannot {doing} '{location.name}': {text}")


def is_storage_error(err: BaseException) -> bool:
    """Whether an error while reading a file is the storage's (see :func:`storage_error`), not
    the file's content."""
    text = first_line(err)
    return any(word in text for words in (_DENIED, _NO_BUCKET, _NETWORK) for word in words)


@contextlib.contextmanager
def storage_errors(location, doing: str = "read"):
    """Inside, an ``OSError`` of the storage of ``location`` becomes one line (:func:`storage_error`)."""
    try:
        yield
    except OSError as err:
        raise storage_error(err, location, doing) from None
