"""The one base class for errors a user caused and can fix (a bad file, flag, route or model).

The command line shows these as one line and exits with status 2; anything else is a bug and
keeps its traceback. Each module keeps its own subclass (RouteError, DatasetError, ...), so this
file imports nothing and ``tiergate cost`` does not pay for importing the SDK to catch them.
"""


class TiergateError(Exception):
    """Bad input: the message says what is wrong and where."""
