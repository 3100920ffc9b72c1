"""The simulated crowd, and the latent truth of everything it writes.

Every simulated volunteer has a persona. As an author, the persona sets the latent quality
of what they write (a Beta draw) and how often it is bad (spam, nonsense: it should be
rejected). As a reviewer, it sets how often their spam vote reads the truth correctly and
how noisy their quality label is; as a ranker, the noise of a Thurstone model (replies are
ordered by latent quality plus Gaussian noise). Trolls write spam, review adversarially and
rank at random. Because the simulator knows the truth of every message, a change to the
growth rules can be judged by the accuracy of what it exports, not only by its volume.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hedgerow.growth.schemas import Submission, TaskView


@dataclass(frozen=True)
class Persona:
    name: str
    # Share of the crowd.
    weight: float
    # Beta(alpha, beta) of the latent quality of a good message.
    quality_alpha: float
    quality_beta: float
    # Chance that a message they write is bad (should be rejected).
    bad_rate: float
    # Chance that their review's spam vote matches the truth.
    review_accuracy: float
    # Standard deviation of their quality label around the truth.
    quality_noise: float
    # Standard deviation of their ranking noise (None: they rank at random).
    ranking_noise: float | None
    skip_rate: float


PERSONAS: tuple[Persona, ...] = (
    Persona("careful", 0.35, 8, 2, 0.01, 0.95, 0.10, 0.08, 0.02),
    Persona("average", 0.40, 5, 3, 0.04, 0.88, 0.20, 0.15, 0.03),
    Persona("careless", 0.17, 2, 3, 0.15, 0.72, 0.35, 0.35, 0.10),
    # Adversarial reviews: they vote against the truth more often than not.
    Persona("troll", 0.08, 1, 9, 0.90, 0.30, 0.50, None, 0.10),
)
PERSONAS_BY_NAME = {persona.name: persona for persona in PERSONAS}
# A bad message's latent quality is drawn below this.
BAD_QUALITY_CEILING = 0.15
SCALE_STEPS = 4


@dataclass(frozen=True)
class Truth:
    """What the simulator knows of a message: its latent quality in [0, 1], and whether
    it is bad (spam, nonsense) and should be rejected."""

    quality: float
    bad: bool


# What a message nobody simulated wrote counts as (none exist in a simulation's own trees).
UNKNOWN_TRUTH = Truth(0.5, False)


@dataclass
class Volunteer:
    user_id: int
    persona: Persona


class Crowd:
    """The simulated volunteers, how each one answers a task, and the truth they made."""

    def __init__(self, volunteers: list[Volunteer], rng: random.Random) -> None:
        self.volunteers = volunteers
        self.rng = rng
        self.truth: dict[int, Truth] = {}
        self.serial = 0
        self._pending_truth: Truth | None = None

    @staticmethod
    def draw_persona(rng: random.Random) -> Persona:
        return rng.choices(PERSONAS, weights=[p.weight for p in PERSONAS])[0]

    def truth_of(self, message_id: int) -> Truth:
        return self.truth.get(message_id, UNKNOWN_TRUTH)

    def wants_to_skip(self, volunteer: Volunteer) -> bool:
        return self.rng.random() < volunteer.persona.skip_rate

    def record_written(self, message_id: int) -> None:
        """The message the last answered writing task created has the truth drawn for it."""
        assert self._pending_truth is not None
        self.truth[message_id] = self._pending_truth
        self._pending_truth = None

    def _write(self, volunteer: Volunteer, what: str) -> str:
        persona = volunteer.persona
        self.serial += 1
        if self.rng.random() < persona.bad_rate:
            self._pending_truth = Truth(self.rng.random() * BAD_QUALITY_CEILING, True)
            return f"BUY CHEAP STUFF NOW!!! visit my page {self.serial} {self.rng.random():.6f}"
        quality = self.rng.betavariate(persona.quality_alpha, persona.quality_beta)
        self._pending_truth = Truth(quality, False)
        return (
            f"{what} {self.serial} from volunteer {volunteer.user_id}: a message about "
            f"hedgerows and the wildlife that lives in them ({self.rng.random():.6f})."
        )

    def _review(self, volunteer: Volunteer, target: Truth) -> Submission:
        persona = volunteer.persona
        reads_truth = self.rng.random() < persona.review_accuracy
        says_bad = target.bad if reads_truth else not target.bad
        seen = target.quality + self.rng.gauss(0.0, persona.quality_noise)
        quality = round(min(max(seen, 0.0), 1.0) * SCALE_STEPS) / SCALE_STEPS
        labels = {"spam": float(says_bad), "lang_mismatch": 0.0, "quality": quality}
        return Submission(labels=labels, mode="quick")

    def _rank(self, volunteer: Volunteer, reply_ids: list[int]) -> Submission:
        noise = volunteer.persona.ranking_noise
        if noise is None:
            order = list(reply_ids)
            self.rng.shuffle(order)
        else:
            seen = {i: self.truth_of(i).quality + self.rng.gauss(0.0, noise) for i in reply_ids}
            order = sorted(reply_ids, key=lambda i: -seen[i])
        return Submission(ranking=order)

    def answer(self, volunteer: Volunteer, task: TaskView) -> Submission:
        kind = task.kind
        if kind == "write_prompt":
            return Submission(text=self._write(volunteer, "Prompt"), category="open_qa")
        if kind.startswith("reply_"):
            return Submission(text=self._write(volunteer, "Reply"))
        if kind.startswith("review_"):
            return self._review(volunteer, self.truth_of(task.conversation[-1].id))
        if kind.startswith("rank_"):
            return self._rank(volunteer, [reply.id for reply in task.replies])
        raise ValueError(f"unknown task kind {kind}")

    def red_flags(self, volunteer: Volunteer, task: TaskView) -> list[int]:
        """Honest volunteers sometimes red-flag a bad message they saw in the conversation."""
        if volunteer.persona.name == "troll":
            return []
        return [
            message.id
            for message in task.conversation
            if self.truth_of(message.id).bad and self.rng.random() < 0.5
        ]
