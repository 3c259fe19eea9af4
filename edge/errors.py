"""One exception per failure kind, all under SalesbotError.

The CLI prints these without a traceback; the server logs them and keeps the
other calls running. Each message says what to do.
"""


class SalesbotError(Exception):
    """Base of every error the appliance reports to a user."""


class ConfigError(SalesbotError):
    """A config file or value is invalid."""


class BundleError(SalesbotError):
    """A model bundle is missing, incomplete, corrupt or of the wrong kind."""


class CorpusError(SalesbotError):
    """A labelled corpus file (CSV) cannot be used; names the file and line."""


class InputError(SalesbotError):
    """Caller-supplied data (text, audio, files) is unusable."""


class ProtocolError(SalesbotError):
    """A media peer (AudioSocket, WebSocket) sent bytes its protocol forbids; only that call is closed."""


class AmiError(SalesbotError):
    """The Asterisk manager interface cannot be reached or refused the login."""


class ScriptError(SalesbotError):
    """A script (话术) file is invalid; names the file, line, node and field."""


class KnowledgeError(SalesbotError):
    """A knowledge file or knowledge base cannot be used; names the file and line."""


class RecordsError(SalesbotError):
    """The call-records database cannot be opened or written."""


class BatchError(SalesbotError):
    """A batched model call failed or was cut off; only the items of that batch get it."""


class BatchTimeoutError(BatchError):
    """A batched request waited longer than its timeout (queue full, or the model hung)."""


class BatcherClosedError(BatchError):
    """A request reached a batcher that is stopped (the daemon is shutting down)."""


class CallBudgetError(SalesbotError):
    """A call's handler ran past its per-call budget and was cut off; only that call ends."""


class ServeError(SalesbotError):
    """The daemon cannot start: an address is taken, the admin token cannot be read, a handler will not load."""


class SoundDeviceError(SalesbotError):
    """PortAudio is missing, or a sound device is absent or refuses 16 kHz mono (the kiosk)."""


class CampaignError(SalesbotError):
    """A campaign is unknown, or its settings (hours, retries, holidays) are invalid; names the setting."""


class AuthError(SalesbotError):
    """The dashboard's credentials file cannot be read or written."""


class AudioFormatError(InputError):
    """An audio file or buffer is in a format the runtime cannot use (codec, width, rate, length)."""


class SpeechEngineError(SalesbotError):
    """A speech engine (espeak-ng, piper, sherpa-onnx, vosk) is missing or failed to load or run."""


class ModelDirError(BundleError):
    """A third-party speech model directory is incomplete or malformed; names the missing file or key."""


class ArchiveError(InputError):
    """A model archive is unreadable or holds entries that would escape the install directory."""


class CallWithdrawnError(SalesbotError):
    """The dialler wrote this call off before the bot took it (it books the lead for a retry), so the bot hangs
    up instead of talking to a lead that will be dialled again."""
