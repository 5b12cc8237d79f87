"""The one exception type for bad task data.

Every message names the file, model or layer at fault, so that the command line can print it as a
single line without a traceback.
"""


class TaskFormatError(ValueError):
    """A task folder, shard, weight file or layer list that does not follow the PGDL format."""


class UsageError(ValueError):
    """A name or setting the user chose that does not exist or cannot be used (an unknown recipe,
    data set or backend, a budget that is not a positive number); the message says what is allowed."""
