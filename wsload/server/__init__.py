"""The built-in target server (``wsload serve`` and ``url = "builtin"``)."""
