"""What a listener cannot read: counted as invalid, answered by nothing, never fatal."""


class InvalidLine(ValueError):
    """A syslog line or a GELF datagram that breaks its format; the reason is for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
