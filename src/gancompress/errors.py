"""The one exception type for mistakes a user can make (paths, formats, shapes, budgets, keys).

The CLI prints its message as one line and exits with status 2, without a traceback. Anything
else that escapes is a bug in gancompress and keeps its traceback.
"""


class UserError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""
