"""`cuts` sub-commands (to be filled in)."""


def register(sub):
    """Add this group's sub-commands to the parser."""
