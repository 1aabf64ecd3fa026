"""One error family for the whole service.

Every business error carries the SailPlay ``status_code`` and message from SPEC §3. The loyalty
face renders it as HTTP 200 + ``{"status":"error",...}``; the messaging face renders the same
error with ``http_status``. Messages marked ★ in the spec are the seed's own words: keep them exact.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TesseraError(Exception):
    status_code: ClassVar[int] = -1
    message: ClassVar[str] = "Internal error"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.text = message if message is not None else self.message
        self.extra = extra
        super().__init__(self.text)

    def body(self) -> dict[str, Any]:
        return {"status": "error", "status_code": self.status_code, "message": self.text, **self.extra}


class PermissionDenied(TesseraError):
    status_code = -7
    message = "Permission denied. Provide auth token and store_department_id"
    http_status = 401


class LoginFailed(TesseraError):
    status_code = -2
    message = "Data not found with provided store_department_key, store_department_id and pin_code"
    http_status = 401


class MissingField(TesseraError):
    status_code = -1000
    message = "Provide required field"

    def __init__(self, field: str) -> None:
        super().__init__(f"Provide required {{'field': '{field}'}}")
        self.field = field


class InvalidParameter(TesseraError):
    """A parameter is present but not usable (not a number, not JSON, out of range)."""

    status_code = -1000
    message = "Invalid parameter"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"Invalid value of {field}: {reason}")
        self.field = field


class MissingCustomerIdentifier(TesseraError):
    status_code = -1000
    message = "Provide user_phone or email or origin_user_id"


class InvalidPhone(TesseraError):
    status_code = -1001
    message = "Phone is not valid"


class InvalidEmail(TesseraError):
    status_code = -1002
    message = "Invalid value of email"


class CustomerNotFound(TesseraError):
    status_code = -4000
    message = "User not found"
    http_status = 404


class PhoneTaken(TesseraError):
    status_code = -200007
    message = "Phone is already used by another user"
    http_status = 409


class EmailTaken(TesseraError):
    status_code = -200010
    message = "Email is already used by another user"
    http_status = 409


class OriginUserIdTaken(TesseraError):
    status_code = -200011
    message = "origin_user_id is already used by another user"
    http_status = 409


class PromocodeNotFound(TesseraError):
    status_code = -4100
    message = "Number not found"
    http_status = 404


class PromocodeGroupNotFound(TesseraError):
    status_code = -4101
    message = "Promocode group not found"
    http_status = 404


class NotActivationGroup(TesseraError):
    status_code = -4102
    message = "Promocode group is not an activation group"
    http_status = 409


class PromocodeGroupDisabled(TesseraError):
    status_code = -4103
    message = "Promocode group is disabled"
    http_status = 409


class PromocodeAlreadyActivated(TesseraError):
    status_code = -4104
    message = "Promocode already activated"
    http_status = 409


class NoFreePromocodes(TesseraError):
    status_code = -4105
    message = "No free promocodes in group"
    http_status = 409


class PromocodeExpired(TesseraError):
    status_code = -4106
    message = "Promocode expired"
    http_status = 409


class PromocodeGroupNameTaken(TesseraError):
    status_code = -4107
    message = "Promocode group name is already used"
    http_status = 409


class CertificateNotFound(TesseraError):
    status_code = -4200
    message = "Certificate not found"
    http_status = 404


class InvalidFile(TesseraError):
    status_code = -4201
    message = "Invalid file"


class DuplicateNumbers(TesseraError):
    status_code = -4202
    message = "Duplicate numbers in file"
    http_status = 409

    #: The body lists at most this many of the offending numbers.
    REPORTED = 100

    def __init__(self, duplicates: list[str]) -> None:
        super().__init__(duplicates=duplicates[: self.REPORTED])


class InvalidNumber(TesseraError):
    status_code = -4203
    message = "Invalid number"

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(line=line, reason=reason)
        self.line = line


class CertificateOfAnotherDepartment(TesseraError):
    status_code = -4204
    message = "Certificate belongs to another department"
    http_status = 409


class CertificateNotActivated(TesseraError):
    status_code = -4205
    message = "Certificate is not activated"
    http_status = 409


class CertificateAlreadyActivated(TesseraError):
    status_code = -4206
    message = "Certificate already activated"
    http_status = 409


class CertificateAlreadyUsed(TesseraError):
    status_code = -4207
    message = "Certificate already used"
    http_status = 409


class CertificateDeleted(TesseraError):
    status_code = -4208
    message = "Certificate is deleted"
    http_status = 409


class PartnerNotFound(TesseraError):
    status_code = -4211
    message = "Partner not found"
    http_status = 404


class DepartmentNotFound(TesseraError):
    status_code = -4209
    message = "Department not found"
    http_status = 404


class InvalidPinCode(TesseraError):
    status_code = -4210
    message = "Invalid pin_code"
    http_status = 403


class Unauthorized(TesseraError):
    """No valid API key (the messaging face)."""

    status_code = -401
    message = "Provide a valid API key: HTTP Basic with the key as password, or Authorization: Bearer <key>"
    http_status = 401


class BadRequest(TesseraError):
    """A messaging-face request that cannot be taken, naming the field at fault when there is one."""

    status_code = -400
    message = "Bad request"
    http_status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, **({"field": field} if field else {}))


class NotFound(TesseraError):
    """A messaging-face id that names nothing of the partner's."""

    status_code = -404
    message = "Not found"
    http_status = 404


class TransportError(TesseraError):
    """Not a business answer but the request's own failure: both faces send its HTTP status
    (the loyalty face answers business errors with HTTP 200)."""


class RateLimited(TransportError):
    status_code = -429
    message = "Too many requests"
    http_status = 429


class LookupsLimited(RateLimited):
    message = "Too many failed look-ups: try again in a minute"


class UnknownPath(TransportError):
    status_code = -404
    message = "Not found"
    http_status = 404


class MethodNotAllowed(TransportError):
    status_code = -405
    message = "Method Not Allowed"
    http_status = 405


class BadRequestBody(TransportError):
    """The body could not be read at all (malformed multipart, a part too large)."""

    status_code = -400
    message = "Bad request body"

    def __init__(self, http_status: int, detail: str) -> None:
        super().__init__(f"The request body cannot be read: {detail}")
        self.http_status = http_status  # type: ignore[misc]
        self.status_code = -http_status  # type: ignore[misc]


class InternalError(TransportError):
    """Something unexpected failed; the log line with this request id says what."""

    status_code = -500
    message = "Internal error"
    http_status = 500

    def __init__(self, request_id: str) -> None:
        super().__init__(f"Internal error; quote request id {request_id}", request_id=request_id)


class PurchaseNotFound(TesseraError):
    status_code = -4300
    message = "Purchase not found"
    http_status = 404
