"""The base of every refusal a service of Sieve raises: a code and an HTTP status for the API, and where it is."""


class Refusal(Exception):
    """A request a service refuses; `code` and `status` become the API's error, `field`/`value` locate it."""

    code = "invalid"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, value=None):
        super().__init__(message)
        self.field = field
        self.value = value
