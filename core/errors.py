"""The one error type that `core` raises for problems a user can fix."""


class RepLensError(ValueError):
    """An input or setting that RepLens cannot use.

    The message names the value that was wrong and what to do instead; pages
    show it as it is with ``st.error``.
    """
