"""A user's own account: sign-up, logging in and out, sessions and API keys, the Terms,
profile settings, and deleting the account; who is asking (security.py) for every route.

User management is split by who acts: the user on their own account is here; admins
listing users and changing roles are admin/; moderators disabling and enabling users,
their notes and an admin's deletion on request are moderation/users.py. accounts imports
neither: both call in here (role changes and the anonymisation are here, shared).
"""
