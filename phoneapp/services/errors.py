"""Errors that services raise for bad input or unreachable dependencies."""


class ValidationError(ValueError):
    """Bad input; `details` maps each offending field to what is wrong with it."""

    def __init__(self, details, message=None):
        self.details = dict(details)
        if message is None:
            message = "; ".join(f"{field}: {reason}" for field, reason in self.details.items())
        super().__init__(message)
        self.message = message


class NotFound(LookupError):
    """A referenced row does not exist."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


class UpstreamError(RuntimeError):
    """Twilio could not do what was asked; nothing was changed here."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message
