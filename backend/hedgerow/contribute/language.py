"""A warning, never a refusal, when a text looks like another language than the chosen one.

langdetect is small and pure Python; it is unreliable on very short texts, so those are not
checked at all.
"""

from __future__ import annotations

from langdetect import DetectorFactory, LangDetectException, detect_langs

# Same text, same answer: langdetect is randomised unless seeded.
DetectorFactory.seed = 0

MIN_CHARACTERS = 40
MIN_CONFIDENCE = 0.8
# The opening of a text tells its language as well as the whole, at a fraction of the cost.
SAMPLE_CHARACTERS = 2000


def detected_language(text: str) -> str | None:
    """The language code the text is confidently written in, or None when unsure."""
    if len(text.strip()) < MIN_CHARACTERS:
        return None
    try:
        best = detect_langs(text[:SAMPLE_CHARACTERS])[0]
    except LangDetectException:
        return None
    if best.prob < MIN_CONFIDENCE:
        return None
    # langdetect names Chinese zh-cn / zh-tw; the site uses bare language codes.
    return str(best.lang).split("-")[0]


def language_mismatch(text: str, chosen: str) -> str | None:
    """The detected language when it differs from `chosen`, else None."""
    found = detected_language(text)
    return found if found is not None and found != chosen else None
