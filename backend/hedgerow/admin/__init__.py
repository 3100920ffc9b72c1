"""Admins manage users as a whole: the user list and search, role changes (audited, through
accounts.service.change_role), the moderators' and admins' landing page, and the pages and
API endpoints for deleting a user on request (the rule is moderation/users.py).

A user's own account is accounts/; disabling, notes and the moderator's user page are
moderation/users.py.
"""
