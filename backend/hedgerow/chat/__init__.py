"""Chat with the served model: chats as trees, streaming replies, feedback, the arena."""
