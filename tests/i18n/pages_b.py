"""What the moderation, admin, dataset, training and chat pages show in the pseudo-locale
check (tests/i18n/test_pseudo_locale.py): builders that make rich enough data for the main
branches of each template to render, and return the page's URL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hedgerow.audit import record_audit
from hedgerow.models import (
    Battle,
    Chat,
    ChatMessage,
    Label,
    MessageRevision,
    ModelVersion,
    Reaction,
    ReactionKind,
    Release,
    Report,
    TrainingRun,
    TreeState,
    UserNote,
)
from hedgerow.ops.job_health import record_job_run
from tests.factories import make_user
from tests.growth.factories import add_reply, give_track_record, make_tree

if TYPE_CHECKING:
    from tests.i18n.test_pseudo_locale import World


def moderation(world: World) -> dict[str, int]:
    """Reported, edited, deleted and halted messages, notes, audit entries, troll signals
    and a job run, made once per test and shared by the moderation builders."""
    if "reported" in world.made:
        return world.made
    db = world.db
    moderator = world.users["moderator"]
    author = give_track_record(db, make_user(db, username="pseudo_author"), agreed=7, settled=9)
    other = make_user(db, username="pseudo_other", enabled=False)
    tree, root = make_tree(db, author)
    reply = add_reply(db, tree, root, other)
    reply.text = "a rude reply"
    add_reply(db, tree, reply, author)
    add_reply(db, tree, reply, make_user(db))
    for reporter, reason, text in [
        (world.users["volunteer"], "offensive", "rude"),
        (world.users["researcher"], "spam", None),
    ]:
        db.add(Report(message_id=reply.id, reporter_id=reporter.id, reason=reason, text=text))
    db.add(Report(message_id=root.id, reporter_id=moderator.id, reason="other", status="dismissed"))
    db.add(
        MessageRevision(
            message_id=root.id,
            editor_id=moderator.id,
            old_text="teh",
            new_text="the",
            reason="typo",
        )
    )
    root.edited = True
    # A deleted subtree: its top can be undeleted, the reply went with it.
    gone_tree, gone_root = make_tree(db, other, state=TreeState.halted)
    gone = add_reply(db, gone_tree, gone_root, author)
    gone_child = add_reply(db, gone_tree, gone, other)
    gone.deleted, gone.deletion_id = True, gone.id
    gone_child.deleted, gone_child.deletion_id = True, gone.id
    db.add(Report(message_id=gone.id, reporter_id=moderator.id, reason="hate_speech"))
    make_tree(db, author, state=TreeState.lottery_waiting, entered_lottery_at=datetime.now(UTC))
    db.add(UserNote(user_id=other.id, author_id=moderator.id, text="warned twice"))
    # Troll signals on the other user's messages.
    db.add(Reaction(message_id=reply.id, user_id=author.id, kind=ReactionKind.red_flag.value))
    db.add(Reaction(message_id=reply.id, user_id=moderator.id, kind=ReactionKind.thumbs_down.value))
    db.add(
        Label(message_id=reply.id, user_id=author.id, values={"spam": 1.0}, guideline_version="1")
    )
    record_audit(
        db,
        actor_id=moderator.id,
        action="message.edit",
        target_type="message",
        target_id=root.id,
        before={"text": "teh"},
        after={"text": "the"},
        reason="typo",
    )
    record_audit(
        db, actor_id=moderator.id, action="user.disable", target_type="user", target_id=other.id
    )
    record_audit(db, actor_id=None, action="tree.halt", target_type="tree", target_id=gone_tree.id)
    record_audit(
        db, actor_id=moderator.id, action="message.delete", target_type="message", target_id=gone.id
    )
    record_job_run("growth.expire_leases", "SUCCESS")
    db.flush()
    world.made.update(
        reported=reply.id, deleted=gone.id, author=author.id, other=other.id, root=root.id
    )
    return world.made


def moderation_page(url: str) -> Callable[[World], str]:
    def build(world: World) -> str:
        moderation(world)
        return url

    return build


def report_message(world: World) -> str:
    return f"/messages/{moderation(world)['root']}/report"


def moderation_message(world: World) -> str:
    return f"/moderation/messages/{moderation(world)['reported']}"


def moderation_delete(world: World) -> str:
    return f"/moderation/messages/{moderation(world)['reported']}/delete?reason=spam"


def moderation_user(world: World) -> str:
    return f"/moderation/users/{moderation(world)['other']}"


def releases(world: World) -> dict[str, int]:
    """A published release with files, a running export and a failed one; model versions
    ready, serving and failed, with runs that logged SFT and DPO losses."""
    if "release" in world.made:
        return world.made
    db = world.db
    published = Release(
        name="2026-12-01",
        kind="nightly",
        state="published",
        pinned=True,
        schema_version="1",
        filters={},
        counts={"trees": 3, "messages": 40, "contributors": 7, "rows": {"trees.jsonl": 3}},
        files=[{"name": "trees.jsonl", "size": 2048, "sha256": "ab" * 32}],
        total_bytes=2048,
        messages_total=40,
        messages_done=40,
    )
    running = Release(
        name="2026-12-02",
        kind="manual",
        state="running",
        schema_version="1",
        filters={},
        messages_total=40,
        messages_done=12,
    )
    failed = Release(
        name="2026-11-30", kind="nightly", state="failed", schema_version="1", filters={}
    )
    db.add_all([published, running, failed])
    db.flush()
    answers = [
        {"id": 1, "category": "coding", "prompt": "Sort a list", "answer": "Use sorted()."},
        {"id": 2, "category": "chat", "prompt": "Hello", "answer": "Hi!"},
    ]
    ready = ModelVersion(
        name="hedgerow-chat",
        base_model="tiny-base",
        release_id=published.id,
        config={"method": "lora", "dpo": True, "num_processes": 0},
        metrics={"validation_loss": 1.25, "steps": 40},
        reference_answers=answers,
        artifact_path="/models/hedgerow-chat/1",
        status="ready",
    )
    serving = ModelVersion(
        name="hedgerow-chat",
        base_model="tiny-base",
        release_id=published.id,
        config={"method": "lora"},
        reference_answers=[*answers[:1], {**answers[1], "id": 3}],
        status="serving",
    )
    broken = ModelVersion(
        name="hedgerow-chat",
        base_model="tiny-base",
        release_id=published.id,
        config={"method": "full"},
        status="failed",
        failure_reason="out of memory",
    )
    db.add_all([ready, serving, broken])
    db.flush()
    db.add(
        TrainingRun(
            model_version_id=ready.id,
            step=40,
            total_steps=40,
            loss=0.5,
            learning_rate=2e-5,
            tokens_per_second=1200.0,
            eta_seconds=75.0,
            loss_history=[[1, 2.0], [20, 1.0], [40, 0.5], [41, 0.7, 1], [50, 0.6, 1]],
            resumed_from_step=20,
            hardware="cpu",
        )
    )
    db.add(TrainingRun(model_version_id=serving.id, step=10, total_steps=40))
    db.add(TrainingRun(model_version_id=broken.id, step=0, total_steps=40))
    db.flush()
    world.made.update(release=published.id, ready=ready.id, serving=serving.id)
    return world.made


def releases_page(url: str) -> Callable[[World], str]:
    def build(world: World) -> str:
        releases(world)
        return url

    return build


def training_version(world: World) -> str:
    return f"/admin/training/versions/{releases(world)['ready']}"


def training_compare(world: World) -> str:
    made = releases(world)
    return f"/admin/training/compare?a={made['ready']}&b={made['serving']}"


def chats(world: World) -> dict[str, int]:
    """For each viewer (volunteer, admin): a chat with two answers to the same prompt (the
    pager), one liked, one disliked and reported, a failed and a stopped answer, and a hidden
    unshared chat; and voted arena battles."""
    if "chat_volunteer" in world.made:
        return world.made
    db = world.db
    for name in ("volunteer", "admin"):
        user = world.users[name]
        chat = Chat(owner_id=user.id, title="Bread recipes", model_name="hedgerow-chat")
        db.add(chat)
        db.add(
            Chat(owner_id=user.id, title="Old", model_name="m", hidden=True, allow_data_use=False)
        )
        db.flush()
        question = ChatMessage(chat_id=chat.id, role="user", text="How do I bake bread?")
        db.add(question)
        db.flush()
        good = ChatMessage(
            chat_id=chat.id,
            parent_id=question.id,
            role="assistant",
            text="Knead, **rise**, bake.",
            model_name="hedgerow-chat",
            model_version="hedgerow-chat v1",
            sampling={"temperature": 0.7, "top_p": 0.95, "max_tokens": 512},
            thumbs=1,
        )
        bad = ChatMessage(
            chat_id=chat.id,
            parent_id=question.id,
            role="assistant",
            text="Buy some.",
            model_name="hedgerow-chat",
            thumbs=-1,
            report_reason="unhelpful",
            reported_at=datetime.now(UTC),
        )
        db.add_all([good, bad])
        db.flush()
        follow_up = ChatMessage(chat_id=chat.id, parent_id=bad.id, role="user", text="Why?")
        db.add(follow_up)
        db.flush()
        db.add(
            ChatMessage(
                chat_id=chat.id,
                parent_id=follow_up.id,
                role="assistant",
                text="",
                status="failed",
                error="The model server cannot be reached right now; try again later.",
            )
        )
        db.add(
            ChatMessage(
                chat_id=chat.id,
                parent_id=follow_up.id,
                role="assistant",
                text="Because",
                status="stopped",
            )
        )
        battle = Battle(
            user_id=user.id,
            prompt="Name a colour",
            model_a="hedgerow-chat",
            version_a="hedgerow-chat v1",
            answer_a="Blue",
            model_b="other-chat",
            answer_b="Red",
            vote="a",
        )
        db.add(battle)
        open_battle = Battle(
            user_id=user.id,
            prompt="Name a fruit",
            model_a="other-chat",
            answer_a="Apple",
            model_b="hedgerow-chat",
            answer_b="Pear",
        )
        db.add(open_battle)
        db.flush()
        world.made[f"chat_{name}"] = chat.id
        world.made[f"selected_{name}"] = bad.id
        world.made[f"battle_{name}"] = open_battle.id
    db.flush()
    return world.made


def chats_page(url: str) -> Callable[[World], str]:
    def build(world: World) -> str:
        chats(world)
        return url

    return build


def chat_page(world: World) -> str:
    made = chats(world)
    return f"/chat/{made['chat_volunteer']}?selected={made['selected_volunteer']}"


def battle_page(world: World) -> str:
    return f"/arena/{chats(world)['battle_volunteer']}"
