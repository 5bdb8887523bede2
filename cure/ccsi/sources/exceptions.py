"""Errors of catalogue sources. Their messages name sources, fields and environment variables,
never a secret's value."""

from cure.kit.errors import Conflict, InvalidInput, NotFound


class SourceNotFound(NotFound):
    pass


class SourceExists(Conflict):
    pass


class InvalidSource(InvalidInput):
    """A document that is valid on its own but not here (a name that differs from the path, a
    masked secret with nothing stored to keep)."""


class SecretsUnstorable(InvalidInput):
    """Inline secrets sent where no key can seal them (production without CURE_SOURCES_KEY)."""


class SecretsUnreadable(Conflict):
    """Stored secrets that this process cannot decrypt (the key is missing or was changed): the
    source must be given its secrets again (a 409 where a request needed them)."""


class StoredSourceInvalid(Conflict):
    """A stored document the model no longer accepts (CURE changed under it): the source must be
    given again. The message names fields and reasons, never values (they hold secrets)."""
