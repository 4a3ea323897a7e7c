"""The one exception every token decoder raises."""


class TokenDecodeError(ValueError):
    """A token is not well formed; the message says what is wrong with it.

    It subclasses ValueError so callers that already treat bad input as a
    ValueError keep working without knowing about token decoding.
    """
