"""The monitor's exception tree.

Every error the package raises on purpose derives from :class:`MonitorError`, so a
boundary (the command line, a websocket connection) can catch the family, report
the message, and choose an exit status or close code:

    MonitorError
    ├── ConfigError            settings or environment are wrong (bad MONITOR_* value)
    ├── LexiconError           a lexicon file is malformed (names file, entry, reason)
    ├── ModelError             a model file is missing, corrupt or fails to load
    ├── InputError             user input cannot be used
    │   ├── TextInputError     a transcript line is not valid UTF-8
    │   └── AudioDecodeError   an audio file is corrupt, empty or has no audio track
    ├── ProtocolError          a websocket client broke the wire contract (has `code`)
    └── ArchiveError           the evidence archive could not do what was asked
        ├── ArchiveWriteError  a record could not be durably written (disk full, I/O)
        ├── ArchiveIntegrityError  verification found an altered or missing record
        └── ArchiveKeyError    the signing key is missing, unreadable or not the archive's
                               (the server refuses to start rather than re-key the archive)

Messages name what was wrong and where (file, line, entry, field), because they are
shown to people who did not write the code.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error the monitor raises deliberately."""


class ConfigError(MonitorError):
    """A setting or environment variable has an unusable value."""


class LexiconError(MonitorError):
    """A lexicon file is malformed; the message names the file, the entry and the reason."""


class ModelError(MonitorError):
    """A model file is missing, corrupt (checksum mismatch) or cannot be loaded."""


class InputError(MonitorError):
    """User-supplied input cannot be processed."""


class TextInputError(InputError):
    """A transcript line is not valid UTF-8 (or otherwise unreadable)."""


class AudioDecodeError(InputError):
    """An audio file is corrupt, empty, or has no decodable audio stream."""


class ProtocolError(MonitorError):
    """A websocket client violated the wire contract.

    ``code`` is the machine-readable error code sent to the client (see PROTOCOL.md);
    ``fatal`` tells the connection boundary whether to close the session.
    """

    def __init__(self, code: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.fatal = fatal


class ArchiveError(MonitorError):
    """The evidence archive could not complete an operation."""


class ArchiveWriteError(ArchiveError):
    """A record could not be durably written; nothing was acknowledged."""


class ArchiveIntegrityError(ArchiveError):
    """Verification found an altered, reordered or missing record or file."""


class ArchiveKeyError(ArchiveError):
    """The archive's signing key is missing, exposed or does not match its public key."""
