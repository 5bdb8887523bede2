class MailError(Exception):
    """An email could not be handed to the SMTP server; the message never holds the email body."""
