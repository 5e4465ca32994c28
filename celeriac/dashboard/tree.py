"""A task's workflow as a tree: its root, parents and children, groups, a chord's callback.

Built from what the events put in the store: each task's ``root_id`` (every task
of a workflow names the first one) and ``parent_id`` (the task that sent it: the
previous link of a chain, the task a subtask was sent from, and for a chord's
callback the header member that finished last). A task whose parent is in the
workflow hangs under it; the others (the members of a group or chord header sent
together with the root) sit beside the root.

Events carry no group id, so group membership comes from the result backend
(each member's stored result names its group), when the backend keeps it: members
of one group are shown together. Without it the tree is the same, unlabelled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .queries import workflow_tasks
from .store import Store

if TYPE_CHECKING:
    from ..app import Celeriac

logger = logging.getLogger("celeriac.dashboard")

WORKFLOW_LIMIT = 300  # tasks shown of one workflow; the page says when there are more


def workflow_tree(app: Celeriac, store: Store, task: dict[str, Any]) -> dict[str, Any]:
    """``{"nodes": [...], "size": n, "cut": bool}``; each node has ``children``, and a run
    of siblings in one group is a node ``{"group": id, "members": [...]}``."""
    root_id = task.get("root_id") or task["id"]
    rows = workflow_tasks(store, root_id, WORKFLOW_LIMIT)
    cut = len(rows) > WORKFLOW_LIMIT
    rows = rows[:WORKFLOW_LIMIT]
    groups = _group_ids(app, [row["id"] for row in rows]) if len(rows) > 1 else {}
    nodes = {row["id"]: {**row, "group_id": groups.get(row["id"]), "children": []} for row in rows}
    tops: list[dict[str, Any]] = []
    for node in nodes.values():  # oldest first: children in the order they were sent
        parent = nodes.get(node["parent_id"]) if node["parent_id"] != node["id"] else None
        (parent["children"] if parent is not None else tops).append(node)
    tops.sort(key=lambda node: node["id"] != root_id)  # the root first, the rest as sent
    return {"nodes": _grouped(tops), "size": len(rows), "cut": cut, "root_id": root_id}


def _grouped(siblings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Siblings with members of one group gathered at the first member's place."""
    out: list[dict[str, Any]] = []
    boxes: dict[str, dict[str, Any]] = {}
    for node in siblings:
        node["children"] = _grouped(node["children"])
        group = node["group_id"]
        if group is None:
            out.append(node)
        elif group in boxes:
            boxes[group]["members"].append(node)
        else:
            boxes[group] = {"group": group, "members": [node]}
            out.append(boxes[group])
    return out


def _group_ids(app: Celeriac, ids: list[str]) -> dict[str, str]:
    """Each task's group, as its stored result says; {} when the backend cannot tell."""
    try:
        metas = app.backend.get_many(ids)
    except Exception as exc:  # an unreachable or disabled backend: the tree goes unlabelled
        logger.debug("no group ids from the result backend: %r", exc)
        return {}
    return {task_id: meta.group_id for task_id, meta in metas.items() if meta.group_id}
