from tests.mail_server import inbox

__all__ = ["inbox"]
