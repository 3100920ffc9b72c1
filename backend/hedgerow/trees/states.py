"""How the states of trees and messages read to people, in the current language (the
stored value is the key)."""

from __future__ import annotations

from hedgerow.i18n import lazy_gettext

TREE_STATE_TITLES = {
    "prompt_review": lazy_gettext("prompt in review"),
    "lottery_waiting": lazy_gettext("waiting for the prompt lottery"),
    "growing": lazy_gettext("growing"),
    "ranking": lazy_gettext("ranking"),
    "ready_for_export": lazy_gettext("ready for export"),
    "aborted_low_grade": lazy_gettext("aborted (low grade)"),
    "halted": lazy_gettext("halted"),
}

REVIEW_STATE_TITLES = {
    "pending": lazy_gettext("in review"),
    "accepted": lazy_gettext("accepted"),
    "rejected": lazy_gettext("rejected"),
}

ROLE_TITLES = {
    "prompter": lazy_gettext("Prompter"),
    "assistant": lazy_gettext("Assistant"),
}

# The prompt categories.
CATEGORY_TITLES = {
    "brainstorming": lazy_gettext("brainstorming"),
    "classification": lazy_gettext("classification"),
    "closed_qa": lazy_gettext("closed QA"),
    "generation": lazy_gettext("generation"),
    "information_extraction": lazy_gettext("information extraction"),
    "open_qa": lazy_gettext("open QA"),
    "summarization": lazy_gettext("summarization"),
    "creative_writing": lazy_gettext("creative writing"),
    "coding": lazy_gettext("coding"),
    "other": lazy_gettext("other"),
}
