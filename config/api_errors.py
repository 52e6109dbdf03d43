"""One error shape for the whole API: {"error": code, "detail": message, ...fields that locate it}."""
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from collection.errors import Refusal


class PayloadRejected(exceptions.APIException):
    """The request body is unusable; carries where the problem is (line, field, value)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_payload"

    def __init__(self, detail: str, *, status_code: int | None = None, code: str | None = None, **where):
        super().__init__(detail, code)
        if status_code:
            self.status_code = status_code
        self.code = code or self.default_code
        self.where = {k: v for k, v in where.items() if v is not None}


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, PayloadRejected):
        response.data = {"error": exc.code, "detail": str(exc.detail), **exc.where}
    elif isinstance(exc, exceptions.APIException) and isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"error": exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code,
                         "detail": response.data["detail"]}
    elif isinstance(exc, exceptions.ValidationError):
        response.data = {"error": "invalid", "detail": "The request is not valid.", "fields": response.data}
    return response


def refused(exc: Refusal) -> PayloadRejected:
    """A service's refusal as the API's error shape: {"error", "detail", "field", "value"}."""
    return PayloadRejected(str(exc), status_code=exc.status, code=exc.code, field=exc.field, value=exc.value)


def error_response(code: str, detail: str, http_status: int, **where) -> Response:
    return Response({"error": code, "detail": detail, **where}, status=http_status)
