from cure.kit.errors import CureError, Forbidden, NotFound, Unauthorized


class SessionMissing(Unauthorized):
    """No portal session: no refresh cookie, or one that no longer works."""


class CsrfRejected(Forbidden):
    """A session request without the CSRF token that matches its cookie, or from another origin."""


class StorylineNotFound(NotFound):
    pass


class PortalNotBuilt(CureError):
    """The API runs, but nobody has built the portal's files (``npm run build`` in portal/)."""

    status_code = 503
