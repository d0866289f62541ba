"""Errors a stage raises for a file that will never process."""


class DocumentRejected(Exception):
    """The file itself is the problem (wrong type, encrypted, damaged): fail at once, never retry.

    The message is shown to the uploader as is, so it says what is wrong and what to do.
    """
