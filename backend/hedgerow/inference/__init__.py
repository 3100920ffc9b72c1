"""The built-in OpenAI-compatible model server (`hedgerow serve-model`)."""
