"""Moving, publishing and checking the anchors of every hash chain (the audit log and each organization's
controlled-substance register) the same way (issue 15 H3).

A ``ChainSource`` gives a chain's head and its rows; ``advance`` moves its anchor after a commit (only over a
chain that extends the anchored head) and publishes the new checkpoint; ``check`` compares the chain with the
anchor file and the collector's records; ``reset`` re-anchors after a verified restore or a new key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from django.conf import settings

from ketaclinic.audit import anchor_keys, chain, publish

log = logging.getLogger("ketaclinic.audit.anchoring")


class ChainSource(Protocol):
    name: str

    def head(self) -> tuple[int, str] | None: ...

    def rows(self, from_seq: int = 1) -> Iterator[chain.Row]: ...


def anchor_path() -> Path:
    return Path(settings.KETACLINIC_AUDIT_ANCHOR_PATH)


def _extends(source: ChainSource, head_seq: int) -> Callable[[chain.Anchor], bool]:
    def check(current: chain.Anchor) -> bool:
        prev: str | None = None
        expected = current.seq
        for row in source.rows(current.seq):
            if row.seq > head_seq:
                break
            if row.seq != expected or row.computed != row.entry_hash:
                return False
            if prev is None:
                if row.entry_hash != current.hash:
                    return False
            elif row.prev_hash != prev:
                return False
            prev, expected = row.entry_hash, expected + 1
        return prev is not None and expected == head_seq + 1

    return check


def advance(source: ChainSource, *, began_here: bool = False) -> chain.Anchor | None:
    """After a commit: move the chain's anchor to its head and publish it. Never raises (the clinic's work
    has committed); a refusal is logged as an error and left for `ketaclinic audit verify` to name.
    ``began_here``: the committing transaction wrote the chain's first entry, so a missing anchor may be
    created."""
    head = source.head()
    if head is None:
        return None
    try:
        signer = anchor_keys.provider()
        written = chain.write_anchor(
            anchor_path(),
            signer,
            head[0],
            head[1],
            chain=source.name,
            may_create=began_here,
            extends=_extends(source, head[0]),
        )
    except (chain.AnchorError, anchor_keys.AnchorKeyError) as exc:
        log.error("%s anchor not moved to #%s: %s", source.name, head[0], exc)
        return None
    if written is not None:
        publish.publish(source.name, written.seq, written.hash, written.mac)
    return written


def reset(source: ChainSource) -> chain.Anchor | None:
    """Anchor the chain's current head unconditionally and publish it as a reset (an operator's decision after
    a verified restore, a lost anchor file or a new key). The reset is visible in the collector's record."""
    head = source.head()
    if head is None:
        return None
    signer = anchor_keys.provider()
    written = chain.write_anchor(anchor_path(), signer, head[0], head[1], chain=source.name, force=True)
    if written is not None:
        reset_mac = chain.sign(
            signer, chain.anchor_message(source.name, written.seq, written.hash, reset=True)
        )
        publish.publish(source.name, written.seq, written.hash, reset_mac, reset=True)
    return written


def load_published(path: Path | None = None) -> tuple[list[publish.Published] | None, str]:
    """The collector's records (``path`` or ``KETACLINIC_ANCHOR_PUBLISHED_FILE``); (None, "") when neither is
    given, (None, problem) when they cannot be read."""
    path = path or publish.published_path()
    if path is None:
        return None, ""
    try:
        return publish.read_published(path), ""
    except publish.PublishedError as exc:
        return None, f"{exc}, so the chain cannot be compared with what was published"


def check(
    source: ChainSource,
    *,
    anchors: dict[str, chain.Anchor] | None = None,
    anchor_file: Path | None = None,
    use_anchor: bool = True,
    published: tuple[list[publish.Published] | None, str] | None = None,
    published_limit: int | None = None,
) -> chain.ChainCheck:
    anchor_problem = ""
    if anchors is None:
        try:
            anchors = chain.read_anchors(anchor_file or anchor_path()) or {}
        except chain.AnchorError as exc:
            anchors, anchor_problem = {}, str(exc)
    signer: chain.Signer | None
    try:
        signer = anchor_keys.provider()
        signer.sign(b"ketaclinic-probe")
    except anchor_keys.AnchorKeyError as exc:
        signer = None
        anchor_problem = anchor_problem or f"{exc}, so the {source.name} chain cannot be verified"
    records, published_problem = published if published is not None else load_published()
    return chain.check_chain(
        source.name,
        source.rows(),
        signer=signer,
        anchor=anchors.get(source.name),
        use_anchor=use_anchor,
        anchor_problem=anchor_problem,
        published=records,
        published_problem=published_problem,
        published_limit=published_limit,
    )


def key_status() -> tuple[bool, str]:
    """For `ketaclinic check`: whether the anchor key is kept apart from the data, and where it comes from."""
    try:
        provider = anchor_keys.provider()
    except Exception as exc:  # an operator's provider path that does not import
        return False, f"FAILED: the anchor key provider cannot be loaded: {exc}"
    problems = provider.problems()
    if problems:
        return False, f"FAILED ({provider.describe()}): " + "; ".join(problems)
    return True, f"ok ({provider.describe()})"


def sink_status() -> str:
    """For `ketaclinic check` (reported, not counted as a failure: a single machine may have no collector)."""
    target = settings.KETACLINIC_ANCHOR_SYSLOG
    compared = publish.published_path()
    if not target:
        return (
            "NOT CONFIGURED: anchors are not published off this host, so a person with both file and "
            "database access could roll the log and the anchor file back together; set "
            "KETACLINIC_ANCHOR_SYSLOG"
        )
    if compared is None:
        return (
            f"publishing to {target}; set KETACLINIC_ANCHOR_PUBLISHED_FILE to the collector's records "
            "to compare the chain with them"
        )
    return f"publishing to {target}; compared with {compared}"
